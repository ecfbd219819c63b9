"""Self-supervised speech encoders (wav2vec 2.0, HuBERT, WavLM, Whisper's encoder) on the `waveform-16k`
config, in EmoBox's frozen-features protocol or fine-tuned.

    model = model_zoo.create_model("wavlm", pretrained=True)           # microsoft/wavlm-large, frozen
    model = model_zoo.create_model("hubert", pretrained="base")        # a weight source by its tag
    model = model_zoo.create_model("wav2vec2", pretrained="path/or/ORG/NAME", freeze=False)   # fine-tuned

The input is the config's batch as `crema_tools.loading.transforms.to_model_input` gives it: a dict
{"waveform": (B, N) float32 in [-1, 1], zero-padded, "length": (B,) samples of each clip}; a plain
(B, N) tensor counts as unpadded.

EmoBox's protocol (emo-box/EmoBox at commit 08280f2, examples/sb: speech_feature_extraction.py,
classifier_head.py, train.py and hparams/*_freeze.yaml; read, not copied):
- the encoder frozen; each utterance encoded alone at 16 kHz, the waveform normalised as the
  checkpoint's feature extractor says (`do_normalize`: zero mean, unit variance over the clip);
- its last layer's hidden states (their README runs extraction without `--all_layers`), layer-normed
  over the whole utterance (`--output_norm`: `F.layer_norm` over (frames, dim), no affine);
  Whisper: the encoder of `WhisperForAudioClassification` on the feature extractor's log-mel
  (padded to 30 s), cut to `samples // 320` frames;
- the head `SuperbBaseModel`: Linear(dim, hidden) and ReLU per frame, the mean over the valid
  frames, Linear(hidden, classes); hidden (`head_size`) 256 in the hparams (128 in the README's example);
- Adam, lr 1e-4, batch 32, 20 epochs in the hparams (100 in the README), NLL of log-softmax.
`layer` picks another hidden state than the last (0: the transformer's input, the projected CNN features).

Here the batch is encoded together with an attention mask where the encoder's convolutional feature
encoder normalises per frame (`feat_extract_norm="layer"`: the large models); where it uses group
norm over time (wav2vec2-base and the other base models) padding would change the features, so each
clip is encoded alone, as EmoBox does. Whisper pads every clip to its 30 s window anyway. Either
way a clip's logits do not depend on the padding of its batch (tested).

Frozen features are cached in the model, per process, keyed by a hash of the clip's valid samples
(`cache_features`, on by default when frozen): an epoch over clips already seen runs only the head.
The cache lives in memory (on the CPU, float32: about 0.5 MB per CREMA-D clip for a 1024-wide
encoder) and is never saved. With several processes each caches the clips it encoded; the loader
deals clips to processes anew each epoch, so an epoch is head-only once every process has met every
clip (with `--no-shuffle`, from the second epoch). `freeze=False` fine-tunes the transformer (the
convolutional feature encoder stays frozen, as usual for these models) and caches nothing.

Weights: the authors' releases of wav2vec 2.0 and HuBERT (fairseq) and of WavLM (microsoft/unilm) are
MIT-licensed, as torchaudio's pipeline documentation states when redistributing them; OpenAI
released Whisper's code and weights under the MIT license (its repository's README). The Hub copies
used here (facebook/*, microsoft/*, openai/*) may carry their own metadata.

transformers is imported when a model is built, not with `model_zoo`.
"""

# no `from __future__ import annotations`: the Hub mixin reads __init__'s annotations as types
import hashlib
import importlib
import os
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from .base import ZooModel
from .catalog import InputSpec, WeightSource, default_cfg, register_model
from .config import ModelZooError, PretrainedCfg

SAMPLE_RATE = 16_000
VARIANTS = ("waveform-16k",)
SSL_LICENSE = "MIT"  # the authors' releases (fairseq, unilm), per torchaudio's pipeline documentation
WHISPER_LICENSE = "MIT"  # openai/whisper's README: code and model weights under the MIT license


@dataclass(frozen=True)
class Family:
    """One transformers architecture: its classes and its weight sources by tag (EmoBox's list)."""

    model: str  # the transformers class the weights load into
    config: str
    extractor: str  # the feature extractor whose preprocessor_config.json says how to feed it
    weights: dict[str, WeightSource]  # by tag; the first is `pretrained=True`
    summary: str


def _hub(repo_id: str, trained_on: str, license: str = SSL_LICENSE) -> WeightSource:
    return WeightSource(f"hf:{repo_id}", trained_on, license)


LIBRISPEECH = "LibriSpeech 960 h, self-supervised"
LIBRI_LIGHT = "Libri-Light 60k h, self-supervised"
WAVLM_MIX = "Libri-Light 60k h, GigaSpeech 10k h and VoxPopuli 24k h (94k h), self-supervised"
FAMILIES = {
    "wav2vec2": Family("Wav2Vec2Model", "Wav2Vec2Config", "Wav2Vec2FeatureExtractor",
                       {"base": _hub("facebook/wav2vec2-base", LIBRISPEECH), "large": _hub("facebook/wav2vec2-large", LIBRISPEECH)},
                       "wav2vec 2.0 (Baevski et al., 2020)"),
    "hubert": Family("HubertModel", "HubertConfig", "Wav2Vec2FeatureExtractor",
                     {"large": _hub("facebook/hubert-large-ll60k", LIBRI_LIGHT), "base": _hub("facebook/hubert-base-ls960", LIBRISPEECH)},
                     "HuBERT (Hsu et al., 2021)"),
    "wavlm": Family("WavLMModel", "WavLMConfig", "Wav2Vec2FeatureExtractor",
                    {"large": _hub("microsoft/wavlm-large", WAVLM_MIX), "base-plus": _hub("microsoft/wavlm-base-plus", WAVLM_MIX),
                     "base": _hub("microsoft/wavlm-base", LIBRISPEECH)},
                    "WavLM (Chen et al., 2022)"),
    "whisper_encoder": Family("WhisperForAudioClassification", "WhisperConfig", "WhisperFeatureExtractor",
                              {"large-v3": _hub("openai/whisper-large-v3", "1M h weakly labelled and 4M h pseudo-labelled "
                                                "audio, supervised (its model card)", WHISPER_LICENSE)},
                              "Whisper's encoder (Radford et al., 2023) on its log-mel"),
}
INPUT = InputSpec(mean=(0.0,), std=(1.0,), input_size=(1,), load={})  # the raw waveform, normalised inside
WHISPER = "whisper_encoder"
MEL_KEYS = ("feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft")
TOLERATED_MISSING = {"masked_spec_embed"}  # used by SpecAugment in fine-tuning only; some checkpoints lack it


class SuperbHead(nn.Module):
    """EmoBox's `SuperbBaseModel`: Linear and ReLU per frame, mean over the valid frames, Linear."""

    def __init__(self, dim: int, hidden: int, num_classes: int):
        super().__init__()
        self.pre_net = nn.Linear(dim, hidden)
        self.post_net = nn.Linear(hidden, num_classes)

    def forward(self, frames: list) -> torch.Tensor:
        lengths = torch.tensor([len(f) for f in frames], device=frames[0].device)
        padded = nn.utils.rnn.pad_sequence(frames, batch_first=True)
        valid = (torch.arange(padded.shape[1], device=padded.device) < lengths[:, None]).unsqueeze(-1)
        x = torch.relu(self.pre_net(padded)) * valid
        return self.post_net(x.sum(dim=1) / lengths[:, None])


def whisper_log_mel(waveform: torch.Tensor, mel_filters: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """(B, samples) -> (B, mels, frames): WhisperFeatureExtractor's log-mel, batched on the waveform's device.

    transformers' own torch path (`_torch_extract_fbank_features`) takes and returns numpy arrays, so it
    cannot stay on the device; these are its operations on a tensor, with its mel filters (tested equal).
    Always in float32, as the extractor computes it, also under mixed precision."""
    with torch.autocast(waveform.device.type, enabled=False):
        window = torch.hann_window(n_fft, device=waveform.device)
        stft = torch.stft(waveform.float(), n_fft, hop_length, window=window, return_complex=True)
        log_spec = torch.clamp(mel_filters.float().T @ (stft[..., :-1].abs() ** 2), min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (log_spec + 4.0) / 4.0


def waveform_and_length(inputs) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(inputs, dict):
        waveform, length = inputs["waveform"], inputs["length"]
    else:
        waveform = inputs
        length = torch.full((inputs.shape[0],), inputs.shape[-1]) if inputs.ndim == 2 else None
    if waveform.ndim != 2 or length is None:
        raise ModelZooError(f"speech encoders take the waveform-16k batch: (B, samples), got {tuple(waveform.shape)}")
    length = torch.as_tensor(length, device=waveform.device).long()
    if (length < 1).any() or (length > waveform.shape[1]).any():
        raise ModelZooError(f"clip lengths must lie in 1..{waveform.shape[1]} samples, got {length.tolist()}")
    return waveform, length


class SpeechSSLClassifier(ZooModel):
    """A transformers speech encoder (`self.encoder`) and EmoBox's head (`self.head`).

    `encoder_config` is the full transformers config as a dict, `normalize` the checkpoint's feature
    extractor's `do_normalize` and `mel` its Whisper settings, so config.json rebuilds the same model.
    """

    def __init__(
        self,
        family: str = "wavlm",
        num_classes: int = 6,
        encoder_config: dict | None = None,
        normalize: bool = True,
        mel: dict | None = None,
        freeze: bool = True,
        head_size: int = 256,
        layer: int = -1,
        output_norm: bool = True,
        cache_features: bool = True,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        if family not in FAMILIES:
            raise ModelZooError(f"unknown speech encoder family {family!r}: choose from {', '.join(FAMILIES)}")
        if head_size < 1:
            raise ModelZooError(f"head_size must be at least 1, got {head_size}")
        transformers = importlib.import_module("transformers")
        spec = FAMILIES[family]
        config = getattr(transformers, spec.config).from_dict(encoder_config or {})
        layers = config.encoder_layers if family == WHISPER else config.num_hidden_layers
        if not -layers - 1 <= layer <= layers:
            raise ModelZooError(f"layer must lie in {-layers - 1}..{layers} (0: the input embeddings, -1: the last), got {layer}")
        self.family, self.normalize, self.freeze, self.output_norm = family, normalize, freeze, output_norm
        self.cache_features = cache_features
        if family == WHISPER:
            from transformers.models.whisper.modeling_whisper import WhisperEncoder

            self.encoder = WhisperEncoder(config)
            dim = config.d_model
            self.mel = dict(mel or {"feature_size": config.num_mel_bins})
            extractor = transformers.WhisperFeatureExtractor(**self.mel)
            if extractor.feature_size != config.num_mel_bins or extractor.nb_max_frames != 2 * config.max_source_positions:
                raise ModelZooError(f"the log-mel ({extractor.feature_size} bins, {extractor.nb_max_frames} frames) does not fit "
                                    f"the encoder ({config.num_mel_bins} bins, {2 * config.max_source_positions} frames)")
            self.register_buffer("mel_filters", torch.from_numpy(extractor.mel_filters).float(), persistent=False)
            self.window, self.n_fft, self.hop = extractor.n_samples, extractor.n_fft, extractor.hop_length
        else:
            self.encoder = getattr(transformers, spec.model)(config)
            dim, self.mel = config.hidden_size, None
            self.alone = config.feat_extract_norm == "group"  # group norm over time: padding would change the features
        self.layer = layer
        self.head = SuperbHead(dim, head_size, num_classes)
        self.encoder.requires_grad_(not freeze)
        if not freeze and family != WHISPER:
            self.encoder.feature_extractor.requires_grad_(False)
        self._cache: dict[str, torch.Tensor] = {}
        self.encoded = 0  # clips run through the encoder since construction (the cache's tests read it)
        self.pretrained_cfg = pretrained_cfg or default_cfg(family, VARIANTS[0], 1)

    def train(self, mode: bool = True):
        """A frozen encoder stays in eval mode (no dropout, no SpecAugment): its features are fixed."""
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def forward(self, inputs) -> torch.Tensor:
        """{"waveform": (B, N), "length": (B,)} (or a (B, N) tensor, unpadded) -> (B, num_classes) logits."""
        return self.head(self.features(*waveform_and_length(inputs)))

    def features(self, waveform: torch.Tensor, length: torch.Tensor) -> list:
        """Each clip's (frames, dim) hidden states, from the cache where the encoder is frozen."""
        if not (self.freeze and self.cache_features):
            return self.encode(waveform, length)
        samples = waveform.detach().float().cpu()
        keys = [hashlib.blake2b(samples[i, :n].numpy().tobytes(), digest_size=16).hexdigest()
                for i, n in enumerate(length.tolist())]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            index = torch.tensor(missing, device=waveform.device)
            some = length[index]
            for i, frames in zip(missing, self.encode(waveform[index, : int(some.max())], some)):
                self._cache[keys[i]] = frames.detach().cpu()
        return [self._cache[key].to(waveform.device) for key in keys]

    def encode(self, waveform: torch.Tensor, length: torch.Tensor) -> list:
        """Run the encoder (with gradients only when fine-tuning): each clip's valid frames of the chosen layer."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            hidden, frames = (self._whisper if self.family == WHISPER else self._ssl)(waveform.float(), length)
        self.encoded += len(frames)
        out = []
        for h, t in zip(hidden, frames.tolist()):
            h = h[: max(int(t), 1)]
            out.append(F.layer_norm(h, h.shape) if self.output_norm else h)
        return out

    def _hidden(self, outputs) -> torch.Tensor:
        return outputs.last_hidden_state if self.layer == -1 else outputs.hidden_states[self.layer]

    def _ssl(self, x: torch.Tensor, length: torch.Tensor):
        valid = torch.arange(x.shape[1], device=x.device) < length[:, None]
        if self.normalize:  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm over the valid samples
            n = length[:, None].to(x.dtype)
            mean = (x * valid).sum(dim=1, keepdim=True) / n
            var = (((x - mean) * valid) ** 2).sum(dim=1, keepdim=True) / n
            x = (x - mean) / torch.sqrt(var + 1e-7) * valid
        hidden_states = self.layer != -1
        if self.alone:
            hidden = [self._hidden(self.encoder(x[i: i + 1, :n], output_hidden_states=hidden_states))[0]
                      for i, n in enumerate(length.tolist())]
        else:
            hidden = self._hidden(self.encoder(x, attention_mask=valid.long(), output_hidden_states=hidden_states))
        return hidden, self.encoder._get_feat_extract_output_lengths(length)

    def _whisper(self, x: torch.Tensor, length: torch.Tensor):
        x = F.pad(x[:, : self.window], (0, max(self.window - x.shape[1], 0)))  # the extractor's 30 s window
        features = whisper_log_mel(x, self.mel_filters, self.n_fft, self.hop)
        hidden = self._hidden(self.encoder(features, output_hidden_states=self.layer != -1))
        return hidden, length.clamp(max=self.window) // (2 * self.hop)  # EmoBox: samples // 320


def _feature_extractor(family: str, source: str):
    transformers = importlib.import_module("transformers")
    try:
        return getattr(transformers, FAMILIES[family].extractor).from_pretrained(source)
    except OSError as e:
        raise ModelZooError(f"{source}: no feature extractor settings (preprocessor_config.json) to feed {family} "
                            f"with ({str(e).splitlines()[0]})") from None


def _load(family: str, source: str, overrides: dict):
    """The encoder's weights from a local folder or a Hub id, with the feature extractor's settings."""
    transformers = importlib.import_module("transformers")
    extractor = _feature_extractor(family, source)
    if getattr(extractor, "sampling_rate", SAMPLE_RATE) != SAMPLE_RATE:
        raise ModelZooError(f"{source} expects {extractor.sampling_rate} Hz; the waveform-16k config is {SAMPLE_RATE} Hz")
    try:
        net, info = getattr(transformers, FAMILIES[family].model).from_pretrained(
            source, output_loading_info=True, dtype=torch.float32, **overrides)
    except (OSError, ValueError) as e:
        raise ModelZooError(f"{source}: cannot load {family} weights ({str(e).splitlines()[0]})") from None
    missing = [k for k in info["missing_keys"] if k.split(".")[-1] not in TOLERATED_MISSING
               and not (family == WHISPER and not k.startswith("encoder."))]  # the classification head we do not use
    if missing:
        raise ModelZooError(f"{source} does not fit {family}: uninitialised {sorted(missing)[:5]}")
    if family == WHISPER:
        mel = {key: getattr(extractor, key) for key in MEL_KEYS}
        return net.encoder, net.config, False, mel
    return net, net.config, bool(extractor.do_normalize), None


def _build(family: str, variant: str, num_classes: int, pretrained, channels: int, freeze: bool, head_size: int,
           layer: int, cache_features: bool, config_overrides: dict) -> SpeechSSLClassifier:
    if channels != 1:
        raise ModelZooError(f"{family} takes the mono waveform: channels does not apply")
    # LayerDrop off: under DDP every trainable parameter must take part in every step
    overrides = {"encoder_layerdrop" if family == WHISPER else "layerdrop": 0.0, **config_overrides}
    options = dict(num_classes=num_classes, freeze=freeze, head_size=head_size, layer=layer,
                   cache_features=cache_features)
    if not pretrained:
        config = getattr(importlib.import_module("transformers"), FAMILIES[family].config)(**overrides)
        return SpeechSSLClassifier(family, encoder_config=config.to_diff_dict(), normalize=family != WHISPER, **options)
    declared = isinstance(pretrained, WeightSource)
    source = pretrained.name if declared else os.fspath(pretrained)
    encoder, config, normalize, mel = _load(family, source, overrides)
    model = SpeechSSLClassifier(family, encoder_config=config.to_diff_dict(), normalize=normalize, mel=mel, **options)
    model.encoder = encoder.requires_grad_(not freeze)
    if not freeze and family != WHISPER:
        model.encoder.feature_extractor.requires_grad_(False)
    model.train(model.training)
    if not declared:  # a declared source is recorded by `create_model`
        local = os.path.exists(source)
        model.pretrained_cfg = replace(model.pretrained_cfg,
                                       weights=f"local:{os.path.basename(os.path.normpath(source))}" if local else f"hf:{source}")
    return model


def _register(family: str) -> None:
    spec = FAMILIES[family]

    def build(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 1, freeze: bool = True,
              head_size: int = 256, layer: int = -1, cache_features: bool = True, **config_overrides) -> SpeechSSLClassifier:
        return _build(family, variant, num_classes, pretrained, channels, freeze, head_size, layer, cache_features,
                      config_overrides)

    tags = ", ".join(f"{tag}: {source.name}" for tag, source in spec.weights.items())
    build.__doc__ = (f"{spec.summary} on the 16 kHz waveform, EmoBox's head; `pretrained` True (the first), a tag "
                     f"({tags}), a local folder or a Hub id; `freeze=False` fine-tunes; other kwargs override the "
                     f"transformers config (random init).")
    register_model(family, model_class=SpeechSSLClassifier, variants=VARIANTS, default_channels=1,
                   paper="not in the paper: EmoBox's frozen-features benchmark (Ma et al., 2024)",
                   summary=f"{spec.summary}, frozen (cached features) or fine-tuned, EmoBox's pooled 2-layer head",
                   input=INPUT, weights=spec.weights, head="head.post_net")(build)


for _family in FAMILIES:
    _register(_family)
