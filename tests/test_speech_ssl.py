"""Self-supervised speech encoders: tiny random checkpoints written by transformers' own classes and
loaded back through the real path (a folder, or the loopback Hub under the real id); masking, the
extractors' normalisation and log-mel, the feature cache, training on two processes, push, predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hubserver import FakeHub
from test_train import CPU_ENV, metrics

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build
from crema_tools.loading.transforms import to_model_input
from model_zoo.catalog import WeightSource
from model_zoo.config import ModelZooError
from model_zoo.speech_ssl import FAMILIES, SpeechSSLClassifier, whisper_log_mel
from model_zoo.train import main as train_main
from model_zoo.train import parse_args

NAMES = ("hubert", "wav2vec2", "wavlm", "whisper_encoder")
TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8, 8),
            conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)


def save_tiny(family: str, folder: Path) -> Path:
    """A random tiny checkpoint in the layout of the real one: weights, config and preprocessor_config.json.
    wav2vec2 is the base layout (group norm, no attention mask, normalised input as its extractor says),
    HuBERT and WavLM the large one (layer norm, attention mask); Whisper a full encoder-decoder checkpoint
    (as openai/whisper-large-v3 is) with a 4 s window instead of 30 s."""
    import transformers as tf

    if family == "whisper_encoder":
        config = tf.WhisperConfig(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                  decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                                  max_source_positions=200, vocab_size=100, max_target_positions=16, pad_token_id=1,
                                  bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
        tf.WhisperForConditionalGeneration(config).save_pretrained(folder)
        tf.WhisperFeatureExtractor(feature_size=80, chunk_length=4).save_pretrained(folder)
        return folder
    large = family != "wav2vec2"
    model, config = {"wav2vec2": (tf.Wav2Vec2Model, tf.Wav2Vec2Config), "hubert": (tf.HubertModel, tf.HubertConfig),
                     "wavlm": (tf.WavLMModel, tf.WavLMConfig)}[family]
    extra = {"feat_extract_norm": "layer", "do_stable_layer_norm": True} if large else {"feat_extract_norm": "group"}
    if family == "wavlm":
        extra["num_buckets"] = 16
    torch.manual_seed(0)
    model(config(**TINY, **extra)).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=large).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_ssl")
    return {name: save_tiny(name, root / name) for name in NAMES}


def waves(lengths=(12000, 8000, 4500), seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(len(lengths), max(lengths), generator=g) * 0.1
    length = torch.tensor(lengths)
    return {"waveform": w * (torch.arange(w.shape[1]) < length[:, None]), "length": length}


# ---------------------------------------------------------------- registry and arguments


def test_registered_with_their_sources_and_licenses():
    assert model_zoo.list_models(variant="waveform-16k") == list(NAMES)
    for name, source in [("wav2vec2", "facebook/wav2vec2-base"), ("hubert", "facebook/hubert-large-ll60k"),
                         ("wavlm", "microsoft/wavlm-large"), ("whisper_encoder", "openai/whisper-large-v3")]:
        entry = model_zoo.get_model_entry(name)
        first = entry.weight_source(True)
        assert entry.default_variant == "waveform-16k" and (first.source, first.license) == (f"hf:{source}", "MIT")
        assert entry.pretrained == f"{first.trained_on}: hf:{source} (MIT)" and entry.weights == FAMILIES[name].weights


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="2d-audio"), "wavlm supports variants ['waveform-16k'], not '2d-audio'"),
    (dict(channels=3), "wavlm takes the mono waveform: channels does not apply"),
    (dict(layer=13), "layer must lie in -13..12"),
    (dict(head_size=0), "head_size must be at least 1"),
])
def test_bad_arguments_are_one_line(kwargs, message):
    with pytest.raises(ModelZooError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        model_zoo.create_model("wavlm", **kwargs)
    assert "\n" not in str(e.value)


def test_a_folder_without_extractor_settings_is_refused(tiny, tmp_path):
    folder = tmp_path / "no-extractor"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny["wavlm"] / "config.json").read_bytes())
    with pytest.raises(ModelZooError, match="no feature extractor settings"):
        model_zoo.create_model("wavlm", pretrained=str(folder))
    with pytest.raises(ModelZooError, match="speech encoders take the waveform-16k batch"):
        model_zoo.create_model("wavlm", pretrained=str(tiny["wavlm"]))(torch.zeros(1, 3, 224, 224))


def test_random_init_takes_transformers_config_fields():
    model = model_zoo.create_model("hubert", head_size=8, **TINY)
    assert model.pretrained_cfg.weights is None and model.normalize and model.encoder.config.hidden_size == 16
    assert model(waves()).shape == (3, 6) and model.head.pre_net.out_features == 8
    with pytest.raises(ModelZooError, match="channels"):
        model_zoo.create_model("hubert", channels=3, **TINY)


# ---------------------------------------------------------------- inputs: masking, normalisation, log-mel


@pytest.mark.parametrize("name", NAMES)
def test_padding_does_not_change_a_clips_logits(tiny, name):
    """Each clip's logits are the same padded in a batch, padded further, or alone at its own length."""
    model = model_zoo.create_model(name, pretrained=str(tiny[name]), cache_features=False).eval()
    batch = waves()
    with torch.no_grad():
        logits = model(batch)
        further = model({**batch, "waveform": torch.nn.functional.pad(batch["waveform"], (0, 4000))})
        alone = [model({"waveform": batch["waveform"][i:i + 1, :n], "length": batch["length"][i:i + 1]})
                 for i, n in enumerate(batch["length"].tolist())]
    assert logits.shape == (3, 6) and model.encoded == 3 + 3 + 3
    assert torch.allclose(logits, further, atol=1e-5) and torch.allclose(logits, torch.cat(alone), atol=1e-5)
    assert model.pretrained_cfg.weights == f"local:{name}" and model.pretrained_cfg.load_options() == {}


@pytest.mark.parametrize("name", ["wav2vec2", "wavlm"])
def test_features_are_the_encoder_on_its_extractors_input(tiny, name):
    """EmoBox's features: transformers' feature extractor, then the encoder, the last layer layer-normed
    over the utterance; the base layout one clip at a time, the large one batched with its attention mask."""
    import transformers as tf

    model = model_zoo.create_model(name, pretrained=str(tiny[name])).eval()
    encoder = getattr(tf, FAMILIES[name].model).from_pretrained(tiny[name]).eval()
    extractor = tf.Wav2Vec2FeatureExtractor.from_pretrained(tiny[name])
    batch = waves()
    clips = [batch["waveform"][i, :n].numpy() for i, n in enumerate(batch["length"].tolist())]
    with torch.no_grad():
        ours = model.features(batch["waveform"], batch["length"])
        if name == "wavlm":
            inputs = extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt")
            hidden = encoder(**inputs).last_hidden_state
        else:
            hidden = [encoder(**extractor(c, sampling_rate=16000, return_tensors="pt")).last_hidden_state[0] for c in clips]
    for i, f in enumerate(ours):
        want = hidden[i][: len(f)]
        assert len(f) == int(encoder._get_feat_extract_output_lengths(batch["length"][i]))
        assert torch.allclose(f, torch.nn.functional.layer_norm(want, want.shape), atol=1e-4)


def test_whisper_log_mel_is_the_feature_extractors():
    """Batched on the device, clips of two lengths, equal to WhisperFeatureExtractor's own output."""
    from transformers import WhisperFeatureExtractor

    for bins, chunk in ((80, 4), (128, 30)):  # the tiny window, and large-v3's 128 bins over 30 s
        extractor = WhisperFeatureExtractor(feature_size=bins, chunk_length=chunk)
        batch = waves((30000, 11000), seed=bins)
        want = extractor([batch["waveform"][0].numpy(), batch["waveform"][1, :11000].numpy()], sampling_rate=16000,
                         return_tensors="pt").input_features
        padded = torch.nn.functional.pad(batch["waveform"], (0, extractor.n_samples - 30000))
        got = whisper_log_mel(padded, torch.from_numpy(extractor.mel_filters).float(), extractor.n_fft, extractor.hop_length)
        assert got.shape == want.shape == (2, bins, extractor.nb_max_frames)
        assert torch.allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------- frozen (cached) or fine-tuned


def test_frozen_features_are_cached_and_fine_tuning_trains_the_encoder(tiny):
    model = model_zoo.create_model("wavlm", pretrained=str(tiny["wavlm"]))
    model.train()
    assert not model.encoder.training and not any(p.requires_grad for p in model.encoder.parameters())
    first = waves()
    model(first).sum().backward()
    assert model.encoded == 3 and model.head.pre_net.weight.grad is not None
    model({"waveform": first["waveform"][[2, 0]], "length": first["length"][[2, 0]]})  # seen clips, another batch
    assert model.encoded == 3
    model(waves(seed=1))  # new clips
    assert model.encoded == 6

    tuned = model_zoo.create_model("wavlm", pretrained=str(tiny["wavlm"]), freeze=False).train()
    assert tuned.encoder.training
    tuned(first).sum().backward()
    tuned(first)
    assert tuned.encoded == 6  # nothing cached
    assert tuned.encoder.encoder.layers[0].attention.q_proj.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in tuned.encoder.feature_extractor.parameters())


def test_save_and_load_keep_the_model(tiny, tmp_path):
    model = model_zoo.create_model("whisper_encoder", pretrained=str(tiny["whisper_encoder"]), head_size=8).eval()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = model_zoo.from_pretrained(tmp_path / "ckpt").eval()
    batch = waves()
    assert isinstance(loaded, SpeechSSLClassifier) and loaded.mel == model.mel
    with torch.no_grad():
        assert torch.equal(model(batch), loaded(batch))
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["pretrained_cfg"]["load"] == {}


# ---------------------------------------------------------------- training, evaluation, Hub, predict


@pytest.fixture(scope="module")
def waveform_data(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("waveform")
    build(corpus, out, ["waveform-16k"], progress=False)
    return out


def test_the_loader_gives_the_model_its_waveform_and_length(waveform_data):
    batch = crema_tools.collate(list(crema_tools.load(waveform_data, "waveform-16k", "test"))[:3])
    x = to_model_input(batch, (0.0,), (1.0,))
    assert set(x) == {"waveform", "length"} and torch.equal(x["length"], batch["length"])
    assert torch.equal(x["waveform"], batch["inputs"]) and x["length"].max() == x["waveform"].shape[1]


def test_the_second_epoch_runs_only_the_head(waveform_data, tiny, tmp_path, monkeypatch):
    """Two epochs in one process: the encoder runs on the train and validation clips in the first epoch
    only; then the best model (a new one, its cache empty) once more on validation and test."""
    calls = []
    encode = SpeechSSLClassifier.encode
    monkeypatch.setattr(SpeechSSLClassifier, "encode", lambda self, w, n: calls.append(len(n)) or encode(self, w, n))
    tiny_source = WeightSource(f"hf:{tiny['wavlm']}", "nothing: a tiny random checkpoint", "MIT")
    monkeypatch.setitem(model_zoo.get_model_entry("wavlm").weights, "large", tiny_source)
    train_main(["--model", "wavlm", "--variant", "waveform-16k", "--data", str(waveform_data), "--pretrained",
                "--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--out", str(tmp_path / "run")])
    m = metrics(tmp_path / "run")
    train, val, test = m["training"]["train_samples_per_process"], m["splits"]["validation"]["samples"], m["splits"]["test"]["samples"]
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert sum(calls) == train + 2 * val + test


def test_two_processes_train_then_push_and_predict(waveform_data, tiny, corpus, tmp_path):
    """`--pretrained` downloads microsoft/wavlm-large from the loopback Hub (the tiny checkpoint under the
    real id, so the Hub path is the real one); two CPU processes; the raters' row; push; predict a video."""
    from helpers import hub_env, push_then_predict

    with FakeHub.from_folder("microsoft/wavlm-large", "model", tiny["wavlm"]) as hub:
        env = hub_env(tmp_path / "home", hub.endpoint, token="hf_loopback_test_token_0123456789")
        launcher = Path(sys.executable).with_name("accelerate")
        r = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "model_zoo.train", "--model",
                            "wavlm", "--variant", "waveform-16k", "--data", str(waveform_data), "--pretrained",
                            "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run")],
                           capture_output=True, text=True, timeout=600,
                           env={**env, **{k: CPU_ENV[k] for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED")},
                                "ACCELERATE_USE_CPU": "true"})
        assert r.returncode == 0, r.stderr[-3000:]
        m = metrics(tmp_path / "run")
        assert m["training"]["processes"] == 2 and m["training"]["pretrained"] is True
        test = m["splits"]["test"]
        assert test["samples"] == crema_tools.load(waveform_data, "waveform-16k", "test").samples
        assert test["human"]["ratings"] == "voice" and 0 <= m["human"]["test"]["accuracy"] <= 1
        card = (tmp_path / "run" / "README.md").read_text()
        assert "hf:microsoft/wavlm-large" in card and "**MIT**" in card

        name, probabilities = push_then_predict(tmp_path / "run", "org/wavlm-crema-d",
                                                corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv",
                                                {**env, "HF_HUB_OFFLINE": "0"}, show="m.pretrained_cfg.license")
    assert name == "SpeechSSLClassifier MIT" and sum(probabilities.values()) == pytest.approx(1.0)
    assert os.path.isfile(tmp_path / "run" / "model.safetensors")


@pytest.mark.parametrize("name", NAMES)
def test_the_recipes_are_emoboxs_hparams(name, tmp_path):
    args = parse_args(["--recipe", f"{name}-waveform-16k", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert (args.model, args.variant, args.pretrained) == (name, "waveform-16k", True)
    assert (args.optimizer, args.lr, args.batch_size, args.epochs) == ("adam", 1e-4, 32, 20)


def test_the_log_mel_stays_float32_under_mixed_precision():
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=4)
    x = torch.nn.functional.pad(waves((20000,))["waveform"], (0, extractor.n_samples - 20000))
    filters = torch.from_numpy(extractor.mel_filters).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = whisper_log_mel(x, filters, extractor.n_fft, extractor.hop_length)
    assert mixed.dtype == torch.float32 and torch.equal(mixed, whisper_log_mel(x, filters, extractor.n_fft, extractor.hop_length))
