"""Moved to `crema_tools.loading.transforms`; this import path keeps working (it is the same module)."""

import sys

from .loading import transforms as _module

sys.modules[__name__] = _module
