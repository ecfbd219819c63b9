"""The build, in its parts: the raw corpus to WebDataset shards, one config per representation.

- `plan`: the checks and the plan (clips, order, splits, steps), fixed before any clip is decoded;
- `partial`: the resume state on disk (`.<variant>.partial/`), and what `prepare` keeps of it;
- `workers`: the decoding worker processes;
- `unit`: one work unit, extracted, rendered, checked and committed;
- `finalise`: report.json and the dataset card (`card`);
- `ranks`: the processes of a parallel build; `outdir`: the lock and what the folder may hold;
- `pipeline`: `build()`, with its signals and one-line errors.
"""

import sys


def note(message: str) -> None:
    """A line for the user, on stderr, right away."""
    print(message, file=sys.stderr, flush=True)
