"""crema-tools: CREMA-D turned into comparable, Hub-ready datasets.

`crema_tools.load(path_or_repo_id, variant, split)` gives a torch-ready dataset (and
`crema_tools.collate` batches 3D clips of their own lengths); `crema_tools.build(...)` builds
configs; `crema_tools.corpus` describes the corpus; `crema_tools.representations` the representations
(one module each).
"""

__version__ = "0.2.0"

_LAZY = {"load": ("loading", "load"), "collate": ("loading", "collate"), "build": ("builder.pipeline", "build")}


def __getattr__(name):  # keep `import crema_tools` (and the CLI's start) free of torch
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'crema_tools' has no attribute {name!r}")
