"""Model zoo: registry, exact parameter counts, forward/backward on every paper pair, Hub round trips.

Kept fast on a 2-core CPU: batch 1, T = 2 frames for the 3D CNNs, VideoMAE's tiny config. The
VGG16 and I3D passes are marked `slow` (deselect with -m "not slow"); CI runs them once.
"""

import json

import pytest
import torch
import torchvision

import model_zoo
from model_zoo.config import LABEL_NAMES, ModelZooError

PAPER_MODELS = ["resnet18", "googlenet", "vgg16", "vit", "simple3d", "i3d", "videomae"]
FUTURE_MODELS = ["vit_replicated_spectrogram", "videomae_conv_stem"]
TINY = {"videomae": {"size": "tiny", "num_frames": 4}, "videomae_conv_stem": {"size": "tiny", "num_frames": 4}}
HEAVY = {"vgg16", "i3d"}
FRAMES = 2  # frames for the 3D CNNs, which accept any T


def build(name, variant=None, **kwargs):
    torch.manual_seed(0)
    return model_zoo.create_model(name, variant=variant, **{**TINY.get(name, {}), **kwargs})


def sample(model, batch=1):
    """A batch in the model's canonical input shape; 3D CNNs get FRAMES frames (VideoMAE its fixed T)."""
    shape = model.pretrained_cfg.input_shape
    if model.pretrained_cfg.frames is not None and not isinstance(model, model_zoo.VideoMAEClassifier):
        shape = (FRAMES, *shape[1:])
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(1))


def pairs(names):
    """(name, variant) for every variant a model supports, VGG16 and I3D marked slow."""
    marks = lambda name: [pytest.mark.slow] if name in HEAVY else []  # noqa: E731
    return [
        pytest.param(name, variant, marks=marks(name), id=f"{name}-{variant}")
        for name in names
        for variant in model_zoo.get_model_entry(name).variants
    ]


def by_name(names):
    return [pytest.param(name, marks=[pytest.mark.slow] if name in HEAVY else [], id=name) for name in names]


# --- registry ---------------------------------------------------------------------------------


def test_list_models_names_the_seven_encoders_and_the_future_work():
    separate = [f"{name}_separate" for name in ("googlenet", "i3d", "resnet18", "simple3d", "vgg16", "vit")]
    speech = ["hubert", "wav2vec2", "wavlm", "whisper_encoder"]  # tests/test_speech_ssl.py
    assert model_zoo.list_models() == sorted(PAPER_MODELS + FUTURE_MODELS + separate + speech)
    assert model_zoo.list_models("vit*") == ["vit", "vit_replicated_spectrogram", "vit_separate"]
    assert model_zoo.list_models(variant="2d-audio") == ["googlenet", "resnet18", "vgg16", "vit"]
    assert model_zoo.list_models(variant="2d-multimodal") == sorted([
        "googlenet", "resnet18", "vgg16", "vit", "vit_replicated_spectrogram",
        "googlenet_separate", "resnet18_separate", "vgg16_separate", "vit_separate",
    ])
    assert model_zoo.list_models(variant="ogm-ge") == ["resnet18_separate"]
    assert model_zoo.list_models(variant="3d-vision") == ["i3d", "simple3d", "videomae", "videomae_conv_stem"]


def test_create_model_rejects_what_the_paper_did_not_run():
    with pytest.raises(ValueError, match="unknown model"):
        model_zoo.create_model("resnet50")
    with pytest.raises(ValueError, match="supports variants"):
        model_zoo.create_model("resnet18", variant="3d-vision")
    with pytest.raises(ValueError, match="unknown variant"):
        model_zoo.list_models(variant="2d-video")
    with pytest.raises(ValueError, match="channels"):
        model_zoo.create_model("simple3d", channels=2)
    with pytest.raises(ValueError, match="no published weights"):
        model_zoo.create_model("vit", pretrained=True)
    with pytest.raises(ValueError, match="2d-multimodal"):
        model_zoo.VisionTransformer("2d-audio", spectrogram_tokens="replicated")


def test_default_variant_is_multimodal_and_cfg_describes_the_input():
    model = build("resnet18")
    cfg = model.pretrained_cfg
    assert (cfg.model_name, cfg.variant, cfg.frames) == ("resnet18", "2d-multimodal", None)
    assert cfg.input_size == (3, 224, 448)
    assert cfg.label_names == LABEL_NAMES == ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)
    gray = build("resnet18", "2d-audio", channels=1).pretrained_cfg
    assert gray.input_shape == (1, 224, 224) and gray.mean == (0.449,) and gray.std == (0.226,)
    i3d = build("i3d", "3d-multimodal").pretrained_cfg
    assert i3d.input_shape == (135, 3, 224, 448)  # the paper's padded clip length, wide frames
    assert i3d.mean == (0.0, 0.0, 0.0) and i3d.std == (1.0, 1.0, 1.0)  # [0, 1] in, [-1, 1] inside
    videomae = build("videomae", "3d-multimodal").pretrained_cfg
    assert videomae.input_shape == (4, 3, 224, 224)  # squeezed multimodal layout


@pytest.mark.parametrize("name, variant", [("resnet18", "2d-audio"), ("googlenet", "2d-audio"), ("vit", "2d-vision"),
                                           ("simple3d", "3d-vision"), ("i3d", "3d-audio"), ("videomae", "3d-audio")])
def test_the_registry_entry_is_the_models_default_input(name, variant, monkeypatch):
    """Each model's default config is its entry's data (timm's default_cfg): changing the entry changes
    what the constructor records, for RGB and grayscale, and the composite separate model follows its encoder."""
    from dataclasses import replace

    from model_zoo import catalog

    entry = model_zoo.get_model_entry(name)
    cfg = build(name, variant, channels=3).pretrained_cfg
    assert entry.input is not None and entry.input.cfg(name, variant, 3, frames=cfg.frames) == cfg
    changed = replace(entry.input, mean=(0.1, 0.2, 0.3), gray_mean=(0.7,), **({"frames": 9} if entry.input.frames else {}))
    monkeypatch.setitem(catalog._REGISTRY, name, replace(entry, input=changed))
    rgb, gray = build(name, variant, channels=3).pretrained_cfg, build(name, variant, channels=1).pretrained_cfg
    assert (rgb.mean, gray.mean) == ((0.1, 0.2, 0.3), (0.7,)) and rgb.std == entry.input.std
    assert rgb.frames == (9 if entry.input.frames else None) or name == "videomae"  # VideoMAE: its config's frames
    if name in ("resnet18", "vit"):
        assert build(f"{name}_separate", "2d-multimodal", channels=3).vision.pretrained_cfg.mean == (0.1, 0.2, 0.3)


def test_weights_are_declared_by_tag_with_what_they_were_trained_on():
    """Every model with published weights lists them by tag (the first is `pretrained=True`); a separate model
    offers its encoder's; a tag resolves to its source, anything else is left to the model's own loader."""
    for name in model_zoo.list_models():
        entry = model_zoo.get_model_entry(name)
        for tag, source in entry.weights.items():
            assert source.source.split(":")[0] in {"torchvision", "hf", "pytorch-i3d"} and source.trained_on, (name, tag)
        assert (entry.pretrained is None) == (not entry.weights)
    assert model_zoo.get_model_entry("resnet18_separate").weights == model_zoo.get_model_entry("resnet18").weights
    videomae = model_zoo.get_model_entry("videomae")
    assert videomae.weight_source(True) is videomae.weights["kinetics-400"]
    assert videomae.weight_source("kinetics-400-pretrain").license == "CC-BY-NC-4.0"
    assert videomae.weight_source("some/folder") is None and videomae.weight_source(False) is None
    assert [n for n in model_zoo.list_models() if not model_zoo.get_model_entry(n).weights] == [
        "simple3d", "simple3d_separate", "vit", "vit_replicated_spectrogram", "vit_separate"]  # trained from scratch
    with pytest.raises(ModelZooError, match="simple3d has no published weights"):
        model_zoo.create_model("simple3d", pretrained=True)


# --- parameter counts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, builder, expected",
    [
        ("resnet18", torchvision.models.resnet18, 11_179_590),
        ("googlenet", lambda **kw: torchvision.models.googlenet(aux_logits=False, init_weights=True, **kw), 5_606_054),
        pytest.param("vgg16", torchvision.models.vgg16, 134_285_126, marks=pytest.mark.slow),
    ],
)
def test_torchvision_parameter_counts_match_torchvision(name, builder, expected):
    model = build(name, "2d-vision")
    assert model.num_parameters() == expected
    assert sum(p.numel() for p in builder(num_classes=6).parameters()) == expected
    # Grayscale drops two of the first conv's three input planes.
    conv = model.net.get_submodule({"resnet18": "conv1", "googlenet": "conv1.conv", "vgg16": "features.0"}[name])
    assert build(name, "2d-vision", channels=1).num_parameters() == expected - conv.weight[:, 1:].numel()


def test_i3d_parameter_count_matches_pytorch_i3d():
    assert model_zoo.InceptionI3d(num_classes=400).num_parameters() == 12_697_264
    assert build("i3d").num_parameters() == 12_293_414  # 6 classes: the paper's "12.3M"


def test_vit_parameter_count_is_the_paper_architecture():
    dim, mlp, depth, tokens, patch_pixels = 768, 1024, 6, 14 * 14 + 1, 16 * 16
    block = 4 * dim + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + (dim * mlp + mlp) + (mlp * dim + dim)
    expected = (patch_pixels * dim + dim) + dim + tokens * dim + depth * block + 2 * dim + (dim * 6 + 6)
    model = build("vit", "2d-audio")
    assert model.num_parameters() == expected == 23_996_166  # paper: ~16.4M (see docs/model_zoo.md)
    assert build("vit", "2d-multimodal").num_parameters() == expected + 14 * 14 * dim  # 392 patches
    assert build("vit", "2d-vision", channels=3).num_parameters() == expected + 2 * patch_pixels * dim
    assert len(model.blocks) == 6 and model.blocks[0].self_attn.num_heads == 4
    assert model.blocks[0].linear1.out_features == 1024 and model.patch_embed.kernel_size == (16, 16)
    assert model.cls_token.shape == (1, 1, 768) and model.pos_embed.shape == (1, 197, 768)


def test_simple3d_is_six_convs_and_a_linear_layer_of_about_3_3k_parameters():
    model = build("simple3d")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 6 and len(linears) == 1
    assert model.num_parameters() == 3_310  # paper: 3262
    assert abs(model.num_parameters() - 3262) / 3262 < 0.02


def test_videomae_base_config_parameter_count():
    model = model_zoo.create_model("videomae")
    config = model.net.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.use_mean_pooling and config.num_frames == 16 and model.pretrained_cfg.frames == 16
    assert model.num_parameters() == 86_231_814  # "about 86.2M" with 6 classes
    assert config.id2label == dict(enumerate(LABEL_NAMES))


# --- forward and backward ---------------------------------------------------------------------


@pytest.mark.parametrize("name, variant", pairs(PAPER_MODELS + FUTURE_MODELS))
def test_forward_maps_canonical_inputs_to_six_logits(name, variant):
    model = build(name, variant).eval()
    x = sample(model)
    expected_width = 448 if variant.endswith("multimodal") and "videomae" not in name else 224
    assert x.shape[-2:] == (224, expected_width)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 6) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", by_name(PAPER_MODELS + FUTURE_MODELS))
def test_grayscale_option_takes_one_channel(name):
    model = build(name, channels=1).eval()
    x = sample(model)
    assert x.shape[-3] == 1
    with torch.no_grad():
        assert model(x).shape == (1, 6)
    with pytest.raises(ValueError, match="C=1"):
        model(torch.rand(1, *x.shape[1:-3], 3, *x.shape[-2:]))


@pytest.mark.parametrize("name", by_name(PAPER_MODELS + FUTURE_MODELS))
def test_backward_reaches_every_parameter(name):
    model = build(name, model_zoo.get_model_entry(name).variants[0]).train()
    loss = torch.nn.functional.cross_entropy(model(sample(model, batch=2)), torch.tensor([0, 5]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_videomae_frames_are_fixed_by_the_config():
    model = build("videomae", "3d-vision", num_frames=32).eval()
    assert model.net.config.num_frames == 32 and model.pretrained_cfg.input_shape == (32, 3, 224, 224)
    with torch.no_grad():
        assert model(torch.rand(1, 32, 3, 224, 224)).shape == (1, 6)
    with pytest.raises(ValueError, match="32"):
        model(torch.rand(1, 16, 3, 224, 224))


def test_videomae_conv_stem_halves_frames_and_size():
    model = build("videomae_conv_stem", "3d-multimodal", num_frames=8).eval()
    stem_out = model.stem(torch.rand(1, 8, 3, 224, 224))
    assert stem_out.shape == (1, 4, 3, 112, 112)
    assert (model.net.config.num_frames, model.net.config.image_size) == (4, 112)
    assert model.pretrained_cfg.input_shape == (8, 3, 224, 224)
    with pytest.raises(ValueError, match="even"):
        build("videomae_conv_stem", num_frames=5)


def test_vit_dropout_option_reaches_every_layer():
    model = build("vit", dropout=0.4)
    rates = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.4}
    assert model.embed_dropout.p == 0.4


def test_vit_replicated_spectrogram_is_face_patches_concatenated_with_the_pooled_spectrogram():
    model = build("vit_replicated_spectrogram", channels=1).eval()
    images = sample(model)
    face, spectrogram = images[..., :224], images[..., 224:]
    # The same tokens computed literally: every 16x16 face patch concatenated with the whole
    # spectrogram pooled to 16x16, then one linear projection.
    face_patches = face.unfold(2, 16, 16).unfold(3, 16, 16).reshape(1, 196, 256)
    pooled = torch.nn.functional.adaptive_avg_pool2d(spectrogram, 16).reshape(1, 1, 256).expand(1, 196, 256)
    weight = torch.cat([model.patch_embed.weight.reshape(768, 256), model.spectrogram_embed.weight], dim=1)
    literal = torch.cat([face_patches, pooled], dim=2) @ weight.T + model.patch_embed.bias
    with torch.no_grad():
        tokens = model.embed(images)
    assert tokens.shape == (1, 197, 768)
    torch.testing.assert_close(tokens[:, 1:], literal + model.pos_embed[:, 1:], rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # the spectrogram half matters
        assert not torch.allclose(model(images), model(torch.cat([face, spectrogram.flip(-1)], dim=-1)))


# --- Hub round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", by_name(PAPER_MODELS + FUTURE_MODELS))
def test_save_pretrained_and_load_model_round_trip(name, tmp_path):
    model = build(name, channels=1 if name.startswith("vit") else 3).eval()
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["pretrained_cfg"]["model_name"] == name
    assert config["pretrained_cfg"]["label_names"] == list(LABEL_NAMES)

    loaded = model_zoo.load_model(tmp_path)
    assert type(loaded) is type(model) and loaded.pretrained_cfg == model.pretrained_cfg
    expected, actual = model.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    x = sample(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_load_model_refuses_foreign_checkpoints(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="not a model_zoo checkpoint"):
        model_zoo.load_model(tmp_path)


def test_model_class_from_pretrained_reads_the_same_files(tmp_path):
    model = build("simple3d", "3d-audio", channels=1, dropout=0.1)
    model.save_pretrained(tmp_path)
    loaded = model_zoo.Simple3D.from_pretrained(tmp_path)
    assert loaded.channels == 1 and loaded.dropout.p == 0.1 and loaded.pretrained_cfg == model.pretrained_cfg
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
