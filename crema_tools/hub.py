"""What the project needs from the Hugging Face Hub beyond its client library: one repo-id check."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import LoadError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def check_repo_id(value: str | Path) -> str:
    """`value` as a Hub repo id (owner/name), or a LoadError saying it is neither a folder nor one.

    Called only after `value` was found not to be a local folder, so the message says both.
    """
    text = str(value)
    if not _REPO_ID.match(text) or ".." in text:
        raise LoadError(f"{text}: no such folder, and not a Hub repo id of the form owner/name")
    return text
