"""Moved to `crema_tools.media.spectrogram`; this import path keeps working (it is the same module)."""

import sys

from .media import spectrogram as _module

sys.modules[__name__] = _module
