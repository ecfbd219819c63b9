"""The paper's seven CREMA-D encoders (and its two future-work variants) behind one registry.

    import model_zoo
    model_zoo.list_models()
    model = model_zoo.create_model("resnet18", variant="2d-multimodal", pretrained=True)
    model.pretrained_cfg.input_size, model.pretrained_cfg.mean
    model.save_pretrained("out/resnet18")           # model.safetensors + config.json + README.md
    model = model_zoo.from_pretrained("out/resnet18")   # or a Hub model repo id "ORG/NAME"
    model_zoo.push_run("runs/resnet18", "ORG/NAME")      # a training run, its card and metrics, to the Hub

Every model maps a batch of its variant's inputs, (B, C, 224, W) for 2D and (B, T, C, 224, W)
for 3D, to (B, num_classes) logits in the order of `LABEL_NAMES`.
"""

# Importing the architecture modules registers them (separate, below, builds on the encoders above it).
from . import i3d, simple3d, speech_ssl, torchvision_2d, videomae, vit  # noqa: F401
from .base import ZooModel
from .config import LABEL_NAMES, VARIANTS, VARIANTS_2D, VARIANTS_3D, PretrainedCfg, Variant
from .i3d import InceptionI3d, load_i3d_weights
from .index import list_pretrained
from .registry import ModelEntry, create_model, from_pretrained, get_model_entry, list_models, load_model
from .separate import SeparateEncoders
from .simple3d import Simple3D
from .speech_ssl import SpeechSSLClassifier
from .torchvision_2d import TorchvisionClassifier
from .videomae import VideoMAEClassifier
from .vit import VisionTransformer

__all__ = [
    "LABEL_NAMES",
    "VARIANTS",
    "VARIANTS_2D",
    "VARIANTS_3D",
    "InceptionI3d",
    "ModelEntry",
    "PretrainedCfg",
    "SeparateEncoders",
    "Simple3D",
    "SpeechSSLClassifier",
    "TorchvisionClassifier",
    "Variant",
    "VideoMAEClassifier",
    "VisionTransformer",
    "ZooModel",
    "create_model",
    "from_pretrained",
    "get_model_entry",
    "list_models",
    "list_pretrained",
    "load_i3d_weights",
    "load_model",
    "push_run",
]


def __getattr__(name):  # model_zoo.push stays unimported until used (`python -m model_zoo.push` runs it)
    if name == "push_run":
        from .push import push_run

        return push_run
    raise AttributeError(f"module 'model_zoo' has no attribute {name!r}")
