"""`fbank`: Kaldi filter banks of the 16 kHz audio, the input of the audio-visual masked autoencoders.

HiCMAE, MAE-DFER and AVF-MAE++ (and, padded to 1024 frames, MMPareto and MLA) feed their audio
branch what HiCMAE's `kinetics_av.py` `_wav2fbank` makes, after AudioMAE and AST:

    waveform = waveform - waveform.mean()
    fbank = torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True, sample_frequency=16000,
        use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    # zero-pad or cut to target_length frames, then (fbank - (-4.2677393)) / (4.5689974 * 2)

The build stores the whole clip's filter banks unpadded (float32, frames x 128, so equal to their
code to the last bit); `crema_tools.load` cuts or pads to `target_length` (256, HiCMAE's; 1024 for
MMPareto) and normalises with AudioSet's statistics, yielding their `(1, target_length, 128)`.
What differs: HiCMAE cuts the audio to the span of the video frames it sampled when that span is
long enough; here the fbank covers the whole clip, from its start (a CREMA-D clip of up to 2.56 s
is whole in either).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LoadError
from .base import BuildOptions, Features, Representation, Step, non_finite, npy, option
from .steps import read_audio

SAMPLE_RATE = 16_000
KALDI = {"htk_compat": True, "sample_frequency": SAMPLE_RATE, "use_energy": False, "window_type": "hanning",
         "num_mel_bins": 128, "dither": 0.0, "frame_shift": 10}
"""HiCMAE's `_wav2fbank` settings (sunlicai/HiCMAE, kinetics_av.py)."""
NORMALISATIONS = {"audioset": (-4.2677393, 4.5689974)}
"""(mean, std) as AudioMAE gives them; applied as (x - mean) / (2 std), as AST and HiCMAE do."""


def kaldi_fbank(signal) -> np.ndarray:
    """(frames, 128) float32 log mel filter banks of a 16 kHz mono signal, its mean removed first."""
    import torch
    import torchaudio

    waveform = torch.as_tensor(signal, dtype=torch.float32).reshape(1, -1)
    with torch.inference_mode():
        return torchaudio.compliance.kaldi.fbank(waveform - waveform.mean(), **KALDI).numpy()


def step_fbank(raw: Path, f: Features) -> None:
    """The clip's audio at 16 kHz (AudioWAV as it is; the FLV's track resampled) as Kaldi filter banks."""
    from ..media import spectrogram

    audio = read_audio(raw, f)
    f["fbank"] = kaldi_fbank(spectrogram.resample(audio.samples, audio.rate, SAMPLE_RATE))
    f["audio_duration"], f["audio_source"] = audio.duration, audio.source


@dataclass(frozen=True)
class FbankOptions:
    """What `crema_tools.load` takes for the fbank config."""

    target_length: int | None = option(256, "the fbank config")  # frames: cut or zero-padded to it (None: the clip's own)
    normalise: str | None = option("audioset", "the fbank config")  # "audioset", or None for the raw log energies


@dataclass(frozen=True, kw_only=True)
class KaldiFbank(Representation):
    """The audio branch's input of the AV-MAE line: (1, target_length, 128), normalised."""

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        return (Step("fbank", step_fbank, ("fbank", "audio_duration", "audio_source")),)

    def render(self, f: Features) -> dict[str, bytes]:
        return {"npy": npy(f["fbank"].astype(np.float32))}

    def sample_fields(self, f: Features) -> dict:
        return {"n_frames": int(f["fbank"].shape[0])}

    def unusable(self, f: Features) -> str | None:
        return non_finite(f, {"fbank": "filter bank"})

    def check_options(self, opts: FbankOptions) -> None:
        if opts.target_length is not None and (isinstance(opts.target_length, bool) or not isinstance(opts.target_length, int)
                                               or opts.target_length < 1):
            raise LoadError(f"target_length must be a positive number of frames or None, not {opts.target_length!r}")
        if opts.normalise is not None and opts.normalise not in NORMALISATIONS:
            raise LoadError(f"normalise must be one of {', '.join(NORMALISATIONS)} or None, not {opts.normalise!r}")

    def decode_inputs(self, members: dict[str, bytes], meta: dict, opts: FbankOptions, split: str) -> dict:
        import torch

        fbank = torch.from_numpy(np.load(io.BytesIO(members["npy"]), allow_pickle=False).astype(np.float32))
        frames = fbank.shape[0]
        if opts.target_length is not None:  # HiCMAE's cut and zero-pad
            fbank = fbank[: opts.target_length]
            fbank = torch.nn.functional.pad(fbank, (0, 0, 0, opts.target_length - fbank.shape[0]))
        if opts.normalise is not None:
            mean, std = NORMALISATIONS[opts.normalise]
            fbank = (fbank - mean) / (std * 2)
        return {"inputs": fbank[None], "length": min(frames, fbank.shape[0])}

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import SPEC_W, array_panel

        fbank = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
        return array_panel(npy(np.ascontiguousarray(fbank.T)), -15.0, 10.0, SPEC_W)


FBANK = KaldiFbank(
    name="fbank", modality="audio", split_family="2d", layout="fbank", paper=False,
    description="Kaldi filter banks of the 16 kHz audio (128 bins, 10 ms), as HiCMAE, MAE-DFER and AVF-MAE++ "
                "feed them; stored unpadded (float32), cut or padded and normalised when loaded",
    shape="(1, target_length, 128): (1, 256, 128) by default",
    members={"npy": {"list": {"list": "float32"}}},
    metadata_fields={"n_frames": "int64"},
    needs=("fbank",), options_type=FbankOptions,
    params={"fbank": {"function": "torchaudio.compliance.kaldi.fbank", **KALDI,
                      "waveform": "16 kHz mono, its mean removed (HiCMAE's _wav2fbank)",
                      "source": "AudioWAV as it is (16 kHz); the FLV's audio track resampled when there is no WAV",
                      "storage": "float32 (frames, 128), the whole clip, unpadded",
                      "at load": "cut or zero-padded to target_length (256), then (x - mean) / (2 std) with AudioSet's "
                                 "mean -4.2677393 and std 4.5689974",
                      "reference": "sunlicai/HiCMAE kinetics_av.py _wav2fbank; run_class_finetuning_av.py norm_stats"}},
)
