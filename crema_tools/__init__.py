"""crema-tools: CREMA-D turned into comparable, Hub-ready datasets.

`crema_tools.load(path_or_repo_id, variant, split)` gives a torch-ready dataset;
`crema_tools.build(...)` builds configs; `crema_tools.corpus` describes the corpus.
"""

__version__ = "0.1.0"


def __getattr__(name):  # keep `import crema_tools` (and the CLI's start) free of torch
    if name == "load":
        from .loading import load

        return load
    if name == "build":
        from .builder.pipeline import build

        return build
    raise AttributeError(f"module 'crema_tools' has no attribute {name!r}")
