"""The representations under their older name, "variants": `crema_tools.representations` holds them.

Kept so that `from crema_tools.variants import VARIANTS, get_variant, ...` goes on working.
"""

from .media.video3d import FPS  # noqa: F401
from .representations import PAPER_2D as VARIANTS_2D  # noqa: F401
from .representations import PAPER_3D as VARIANTS_3D  # noqa: F401
from .representations import REPRESENTATIONS as VARIANTS  # noqa: F401
from .representations import Representation as Variant  # noqa: F401
from .representations import VariantError  # noqa: F401
from .representations import get_representation as get_variant  # noqa: F401
from .representations import get_representations as get_variants  # noqa: F401
from .representations.base import HEIGHT, MODALITIES, SQUARE_WIDTH, WIDE_WIDTH  # noqa: F401
from .representations.options import MULTIMODAL_LAYOUTS  # noqa: F401
