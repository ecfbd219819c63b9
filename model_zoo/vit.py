"""The paper's ViT (section 5.1.2), and its future-work variant with the spectrogram replicated.

Paper configuration: 1 input channel, patch 16, token dimension 768, 6 blocks, 4 heads, MLP 1024,
a class token, trained from scratch with dropout 0.2-0.4. The blocks are the pre-norm encoder of
Dosovitskiy et al. (torch's `nn.TransformerEncoderLayer` with `norm_first=True`).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, check_input
from .config import HEIGHT, SQUARE_WIDTH, VARIANTS_2D, ModelZooError, PretrainedCfg, check_channels, get_variant
from .registry import InputSpec, default_cfg, register_model

HALF_RANGE = InputSpec(mean=(0.5,) * 3, std=(0.5,) * 3)  # [0, 1] to about [-1, 1], any channel count

SPECTROGRAM_TOKENS = ("patches", "replicated")


class VisionTransformer(ZooModel):
    """ViT classifier over 224x224 or 224x448 images.

    `spectrogram_tokens="patches"` is the paper's model: the whole image, spectrogram included, is
    cut into 16x16 patches. `"replicated"` is its proposed fix for the multimodal input (face on
    the left 224 columns, spectrogram on the right): only the face is patched, and the whole
    spectrogram, pooled to one 16x16 patch, is replicated and concatenated to every face patch
    before the patch projection. The projection is linear, so that concatenation is computed as
    face-patch embedding + one spectrogram embedding broadcast to all tokens.
    """

    def __init__(
        self,
        variant: str = "2d-multimodal",
        num_classes: int = 6,
        channels: int = 1,
        patch_size: int = 16,
        dim: int = 768,
        depth: int = 6,
        heads: int = 4,
        mlp_dim: int = 1024,
        dropout: float = 0.0,
        spectrogram_tokens: str = "patches",
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        if spectrogram_tokens not in SPECTROGRAM_TOKENS:
            raise ModelZooError(f"spectrogram_tokens must be one of {SPECTROGRAM_TOKENS}")
        width = get_variant(variant).width
        self.replicate_spectrogram = spectrogram_tokens == "replicated"
        if self.replicate_spectrogram and width != 2 * SQUARE_WIDTH:
            raise ModelZooError("replicated spectrogram tokens need the 2d-multimodal input (face | spectrogram)")
        self.channels = check_channels(channels)
        self.patch_size = patch_size
        self.input_width = width
        patched_width = SQUARE_WIDTH if self.replicate_spectrogram else width
        num_patches = (HEIGHT // patch_size) * (patched_width // patch_size)

        self.patch_embed = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        if self.replicate_spectrogram:
            self.spectrogram_embed = nn.Linear(channels * patch_size * patch_size, dim, bias=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.embed_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, heads, mlp_dim, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(depth)  # built one by one: nn.TransformerEncoder would copy one init
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

        name = "vit_replicated_spectrogram" if self.replicate_spectrogram else "vit"
        self.pretrained_cfg = pretrained_cfg or default_cfg(name, variant, channels)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1 + patches, dim) tokens with position embeddings."""
        if self.replicate_spectrogram:
            face, spectrogram = images[..., :SQUARE_WIDTH], images[..., SQUARE_WIDTH:]
            tokens = self.patch_embed(face).flatten(2).transpose(1, 2)
            spectrogram_patch = F.adaptive_avg_pool2d(spectrogram, self.patch_size).flatten(1)
            tokens = tokens + self.spectrogram_embed(spectrogram_patch).unsqueeze(1)
        else:
            tokens = self.patch_embed(images).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, 224, W) images normalised to about [-1, 1] -> (B, num_classes) logits."""
        check_input(images, 4, self.channels, "vit")
        if images.shape[-2:] != (HEIGHT, self.input_width):
            raise ModelZooError(f"vit was built for 224x{self.input_width} images, got {tuple(images.shape)}")
        tokens = self.embed_dropout(self.embed(images))
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))


@register_model(
    "vit",
    model_class=VisionTransformer,
    variants=VARIANTS_2D,
    default_channels=1,
    input=HALF_RANGE,
    paper="Tables 1-3, Transformer (from scratch)",
    summary="ViT: patch 16, dim 768, 6 blocks, 4 heads, MLP 1024, class token",
    head="head",
    dropout_arg="dropout",
)
def vit(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 1, **kwargs):
    """The paper's ViT; kwargs: `dropout` (paper: 0.2-0.4), `depth`, `heads`, `dim`, `mlp_dim`."""
    return VisionTransformer(variant, num_classes, channels, **kwargs)


@register_model(
    "vit_replicated_spectrogram",
    model_class=VisionTransformer,
    variants=("2d-multimodal",),
    default_channels=1,
    input=HALF_RANGE,
    paper="future work (section 6): spectrogram replicated across patches",
    summary="ViT patching the face only; the pooled spectrogram joins every patch",
    head="head",
    dropout_arg="dropout",
)
def vit_replicated_spectrogram(
    *, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 1, **kwargs
):
    """The paper's proposed multimodal ViT: face patches, each concatenated with the spectrogram."""
    return VisionTransformer(variant, num_classes, channels, spectrogram_tokens="replicated", **kwargs)

