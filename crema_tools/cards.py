"""Where the card templates of `cards/` are: the source tree, or the installed copy."""

from __future__ import annotations

import sys
from pathlib import Path


def card_template(name: str) -> str:
    candidates = (
        Path(__file__).resolve().parents[1] / "cards" / name,  # source checkout, editable install
        Path(sys.prefix) / "share" / "crema-tools" / "cards" / name,  # wheel install
    )
    for path in candidates:
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"card template {name} not found in {', '.join(str(c.parent) for c in candidates)}")
