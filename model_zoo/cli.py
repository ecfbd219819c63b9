"""The model zoo's command-line convention, shared by train, evaluate, report and push.

What a user can fix ends the command with one line on stderr and exit status 2, as in the
`crema-tools` command: a bad argument says `error: ... (see --help)`, a `CremaToolsError` (every
`ModelZooError` is one) says `error: ...`; neither shows a traceback. Anything else escaping is a
bug and keeps its traceback.

    ap = OneLineParser(description="...")
    args = ap.parse_args(argv)
    with one_line_errors():
        ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from crema_tools.errors import CremaToolsError


def fail(message: str) -> NoReturn:
    """End the command: `error: <message>` as one line on stderr, exit status 2."""
    print("error: " + " ".join(str(message).splitlines()), file=sys.stderr)
    sys.exit(2)


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line and exit 2, as everywhere in crema-tools."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """The command's work: a `CremaToolsError` raised in it ends the command through `fail`."""
    try:
        yield
    except CremaToolsError as e:
        fail(str(e))
