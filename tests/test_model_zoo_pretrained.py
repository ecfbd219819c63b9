"""Model zoo: pretrained-weight loading on locally saved weights (nothing is downloaded).

torchvision and I3D read torch hub's cache, $TORCH_HOME/hub/checkpoints/<file name from the URL>,
so the tests save reference weights there under the exact name; VideoMAE loads a local folder.
"""

import hashlib
import os
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from transformers import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification

import model_zoo
from model_zoo.config import LABEL_NAMES
from model_zoo.i3d import RGB_IMAGENET_URL
from model_zoo.weights import read_state_dict

TINY_VIDEOMAE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


@pytest.fixture()
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME; returns its hub checkpoint folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


def cache_weights(checkpoints: Path, url: str, state: dict) -> Path:
    path = checkpoints / os.path.basename(url)
    torch.save(state, path)
    return path


def reference_state(builder, **kwargs) -> dict:
    torch.manual_seed(123)
    return {k: v.clone() for k, v in builder(weights=None, **kwargs).state_dict().items()}


# --- torchvision ------------------------------------------------------------------------------


def test_resnet18_loads_imagenet_weights_through_torchvision(torch_home):
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    reference = reference_state(torchvision.models.resnet18)
    cache_weights(torch_home, weights.url, reference)

    model = model_zoo.create_model("resnet18", variant="2d-multimodal", pretrained=True)
    loaded = model.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items() if not k.startswith("fc."))
    assert model.net.fc.weight.shape == (6, 512)  # fresh 6-way head, not the ImageNet one
    assert model.pretrained_cfg.weights == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    same = model_zoo.create_model("resnet18", variant="2d-audio", pretrained="IMAGENET1K_V1")
    assert torch.equal(same.net.conv1.weight, reference["conv1.weight"])
    with pytest.raises(ValueError, match="unknown weights"):
        model_zoo.create_model("resnet18", pretrained="IMAGENET9K")


def test_googlenet_grayscale_sums_the_imagenet_first_conv(torch_home):
    weights = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1
    # The published file holds the auxiliary heads and the 1000-way head.
    reference = reference_state(torchvision.models.googlenet, aux_logits=True, init_weights=True)
    cache_weights(torch_home, weights.url, reference)

    model = model_zoo.create_model("googlenet", variant="2d-audio", channels=1, pretrained=True).eval()
    loaded = model.net.state_dict()
    torch.testing.assert_close(
        loaded["conv1.conv.weight"], reference["conv1.conv.weight"].sum(dim=1, keepdim=True), rtol=0, atol=0
    )
    kept = [k for k in reference if not k.startswith(("aux1.", "aux2.", "fc.", "conv1.conv."))]
    assert all(torch.equal(loaded[k], reference[k]) for k in kept)
    assert model.net.aux1 is None and model.net.fc.out_features == 6
    # A grey image through the summed conv equals the same image replicated to RGB through the
    # original conv: the reason for summing.
    gray = torch.rand(1, 1, 224, 224)
    rgb = gray.expand(1, 3, 224, 224)
    rgb_conv = torch.nn.functional.conv2d(rgb, reference["conv1.conv.weight"], stride=2, padding=3)
    torch.testing.assert_close(model.net.conv1.conv(gray), rgb_conv, rtol=1e-4, atol=1e-4)
    assert model.pretrained_cfg.mean == (0.5,) and model.pretrained_cfg.std == (0.5,)


@pytest.mark.slow
def test_vgg16_loads_imagenet_weights(torch_home):
    weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1
    reference = reference_state(torchvision.models.vgg16)
    cache_weights(torch_home, weights.url, reference)
    model = model_zoo.create_model("vgg16", variant="2d-vision", channels=1, pretrained=True)
    loaded = model.net.state_dict()
    assert torch.equal(loaded["features.0.weight"], reference["features.0.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(loaded["classifier.3.weight"], reference["classifier.3.weight"])
    assert loaded["classifier.6.weight"].shape == (6, 4096)


# --- I3D ---------------------------------------------------------------------------------------

# sha256 over "key:shape" lines of a pytorch-i3d InceptionI3d(400) state dict, sorted by key
# (344 entries, 57 of them BatchNorm num_batches_tracked), computed from piergiaj/pytorch-i3d.
PYTORCH_I3D_LAYOUT_SHA256 = "5052220dabad60b984dcc8056b846ef7c0d73f155dba5cb0e394ee3832f4469a"


def layout_sha256(state: dict) -> str:
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(state.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def rgb_imagenet_like(seed=0) -> dict:
    """A state dict shaped like rgb_imagenet.pt: 400 logits, no num_batches_tracked (pre-0.4.1 file)."""
    torch.manual_seed(seed)
    state = model_zoo.InceptionI3d(num_classes=400).state_dict()
    return {k: torch.randn_like(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_i3d_state_dict_has_the_pytorch_i3d_layout():
    model = model_zoo.InceptionI3d(num_classes=400)
    state = model.state_dict()
    assert len(state) == 344 and layout_sha256(state) == PYTORCH_I3D_LAYOUT_SHA256
    top = [name for name, _ in model.named_children()]
    assert top[:3] == ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1"] and "Mixed_5c" in top and "logits" in top
    assert [name for name, _ in model.Mixed_4b.named_children()] == ["b0", "b1a", "b1b", "b2a", "b2b", "b3a", "b3b"]
    assert model.Conv3d_1a_7x7.conv3d.bias is None and model.logits.conv3d.bias is not None
    assert (model.Mixed_3b.b0.bn.eps, model.Mixed_3b.b0.bn.momentum) == (1e-3, 0.01)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_load_i3d_weights_is_strict_and_replaces_the_head(tmp_path, suffix):
    state = rgb_imagenet_like()
    path = tmp_path / f"rgb_imagenet{suffix}"
    torch.save(state, path) if suffix == ".pt" else save_file(state, str(path))

    model = model_zoo.load_i3d_weights(model_zoo.InceptionI3d(num_classes=6), path)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("logits."))
    assert model.num_classes == 6 and model.logits.conv3d.weight.shape == (6, 1024, 1, 1, 1)
    assert not torch.equal(model.logits.conv3d.weight, state["logits.conv3d.weight"][:6])

    kept = model_zoo.load_i3d_weights(model_zoo.InceptionI3d(num_classes=6), path, num_classes=400)
    assert torch.equal(kept.logits.conv3d.weight, state["logits.conv3d.weight"])  # same head size: kept

    broken = {k: v for k, v in state.items() if k != "Mixed_4c.b1b.bn.running_var"}
    with pytest.raises(RuntimeError, match="Missing key"):
        model_zoo.load_i3d_weights(model_zoo.InceptionI3d(), broken)
    renamed = {k.replace("Mixed_", "mixed_"): v for k, v in state.items()}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model_zoo.load_i3d_weights(model_zoo.InceptionI3d(), renamed)


def test_create_i3d_pretrained_from_the_hub_cache_and_from_a_file(torch_home, tmp_path):
    state = rgb_imagenet_like()
    cache_weights(torch_home, RGB_IMAGENET_URL, state)
    assert (torch_home / "rgb_imagenet.pt").exists()

    model = model_zoo.create_model("i3d", variant="3d-vision", pretrained=True)
    assert torch.equal(model.Mixed_5c.b3b.conv3d.weight, state["Mixed_5c.b3b.conv3d.weight"])
    assert model.pretrained_cfg.weights == "pytorch-i3d:rgb_imagenet.pt" and model.num_classes == 6

    gray = model_zoo.create_model("i3d", variant="3d-audio", channels=1, pretrained=str(torch_home / "rgb_imagenet.pt"))
    expected = state["Conv3d_1a_7x7.conv3d.weight"].sum(dim=1, keepdim=True)
    assert torch.equal(gray.Conv3d_1a_7x7.conv3d.weight, expected)

    model.save_pretrained(tmp_path / "saved")  # fine-tuned checkpoints keep their provenance
    reloaded = model_zoo.load_model(tmp_path / "saved")
    assert reloaded.pretrained_cfg.weights == "pytorch-i3d:rgb_imagenet.pt" and reloaded.num_classes == 6


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (print, ("unpickling ran code",))


def test_i3d_files_are_read_without_unpickling_objects(tmp_path):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save({"Conv3d_1a_7x7.conv3d.weight": torch.zeros(1), "payload": _RunsCodeWhenUnpickled()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        read_state_dict(path)


def test_i3d_maps_unit_range_inputs_to_minus_one_one():
    model = model_zoo.create_model("i3d", variant="3d-vision").eval()
    seen = []
    model.Conv3d_1a_7x7.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(torch.zeros(1, 2, 3, 224, 224))
        model(torch.ones(1, 2, 3, 224, 224))
    assert seen[0].shape == (1, 3, 2, 224, 224)  # (B, C, T, H, W), pytorch-i3d's layout
    assert torch.all(seen[0] == -1) and torch.all(seen[1] == 1)


# --- VideoMAE ----------------------------------------------------------------------------------


def save_kinetics_like(folder: Path) -> VideoMAEForVideoClassification:
    """A tiny 400-way VideoMAE classifier saved as transformers would publish it."""
    torch.manual_seed(0)
    config = VideoMAEConfig(**TINY_VIDEOMAE, num_frames=16, num_labels=400, use_mean_pooling=True)
    model = VideoMAEForVideoClassification(config)
    model.save_pretrained(folder)
    return model


def test_videomae_loads_a_local_checkpoint_with_a_new_head(tmp_path):
    source = save_kinetics_like(tmp_path / "kinetics")
    model = model_zoo.create_model(
        "videomae", variant="3d-multimodal", pretrained=str(tmp_path / "kinetics"), num_frames=32
    )
    reference, loaded = source.state_dict(), model.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items() if not k.startswith("classifier."))
    assert model.net.classifier.out_features == 6 and model.net.config.id2label == dict(enumerate(LABEL_NAMES))
    assert model.net.config.num_frames == 32 and model.net.config.use_mean_pooling
    assert model.pretrained_cfg.weights == "local:kinetics" and model.pretrained_cfg.frames == 32
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 32, 3, 224, 224)).shape == (1, 6)

    model.save_pretrained(tmp_path / "finetuned")
    reloaded = model_zoo.load_model(tmp_path / "finetuned")
    assert reloaded.net.config.hidden_size == 32  # the checkpoint's config, not the base default
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_videomae_loads_a_pretraining_checkpoint_and_the_stem_reuses_it(tmp_path):
    torch.manual_seed(0)
    config = VideoMAEConfig(**TINY_VIDEOMAE, use_mean_pooling=False, decoder_hidden_size=16,
                            decoder_num_hidden_layers=1, decoder_intermediate_size=32, decoder_num_attention_heads=2)
    pretraining = VideoMAEForPreTraining(config)
    pretraining.save_pretrained(tmp_path / "pretraining")
    encoder = pretraining.videomae.encoder.state_dict()

    model = model_zoo.create_model("videomae", pretrained=str(tmp_path / "pretraining"), num_frames=4)
    assert model.net.config.use_mean_pooling and model.net.fc_norm is not None
    assert all(torch.equal(model.net.videomae.encoder.state_dict()[k], v) for k, v in encoder.items())

    stem = model_zoo.create_model("videomae_conv_stem", pretrained=str(tmp_path / "pretraining"), num_frames=8)
    assert (stem.net.config.image_size, stem.net.config.num_frames) == (112, 4)
    assert all(torch.equal(stem.net.videomae.encoder.state_dict()[k], v) for k, v in encoder.items())
    with torch.no_grad():
        assert stem.eval()(torch.rand(1, 8, 3, 224, 224)).shape == (1, 6)


def test_videomae_grayscale_sums_pretrained_patch_filters(tmp_path):
    source = save_kinetics_like(tmp_path / "kinetics")
    model = model_zoo.create_model("videomae", variant="3d-audio", channels=1, pretrained=str(tmp_path / "kinetics"))
    expected = source.videomae.embeddings.patch_embeddings.projection.weight.sum(dim=1, keepdim=True)
    assert torch.equal(model.net.videomae.embeddings.patch_embeddings.projection.weight, expected)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 16, 1, 224, 224)).shape == (1, 6)


def test_videomae_rejects_a_checkpoint_of_another_shape(tmp_path):
    save_kinetics_like(tmp_path / "kinetics")
    config_file = tmp_path / "kinetics" / "config.json"
    # Weights 64 wide in the MLP, config saying 96: only the head may be re-initialised, so this fails.
    config_file.write_text(config_file.read_text().replace('"intermediate_size": 64', '"intermediate_size": 96'))
    with pytest.raises(ValueError, match="uninitialised"):
        model_zoo.create_model("videomae", pretrained=str(tmp_path / "kinetics"))
