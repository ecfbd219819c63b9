"""The card templates of crema-tools: package data `crema_tools.cards`, kept in the top-level `cards/`.

`dataset_card.md` (a built dataset folder's README.md) and `model_card.md` (a zoo checkpoint's
README.md) are Jinja templates rendered with huggingface_hub's `DatasetCard` and `ModelCard`. They
are read with `importlib.resources`, so they are found wherever the package is: a source checkout
with an editable install, a wheel, `pip install --target` or `--user`.
"""

from __future__ import annotations

from importlib import resources

TEMPLATES = ("dataset_card.md", "model_card.md")


def card_template(name: str) -> str:
    """The text of the template `name` (one of `TEMPLATES`)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown card template {name!r}; the templates are {', '.join(TEMPLATES)}")
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
