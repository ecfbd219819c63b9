"""Moved to `crema_tools.format.shards`; this import path keeps working (it is the same module)."""

import sys

from .format import shards as _module

sys.modules[__name__] = _module
