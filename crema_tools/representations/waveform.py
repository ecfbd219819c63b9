"""`waveform-16k`: the clip's 16 kHz waveform, for self-supervised speech encoders.

EmoBox (and most speech-SSL work on CREMA-D) feeds wav2vec 2.0, HuBERT, WavLM or Whisper the
official WAV's samples at 16 kHz, float32 in [-1, 1]. The build stores exactly those samples as
int16 (the WAV's own values: nothing is lost); `crema_tools.load` yields them as float32 with their
length, and `collate` pads a batch with zeros (use `length` for the attention mask).

Stored as an `.npy` member rather than a `.wav`: `datasets` decodes a wav member only with
torchcodec and a system FFmpeg, while an int16 array loads anywhere (`load_dataset` gives a list of
ints; divide by 32768 for the float waveform; the rate is 16,000, in report.json and the card).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .base import BuildOptions, Features, Representation, Step, npy
from .steps import read_audio

SAMPLE_RATE = 16_000
SCALE = 32768.0  # int16 full scale: the WAV's value / 32768 is the float waveform


def step_waveform_16k(raw: Path, f: Features) -> None:
    """AudioWAV's samples as they are (16-bit, 16 kHz); the FLV's track resampled and rounded when there is no WAV."""
    from ..media import spectrogram

    audio = read_audio(raw, f)
    signal = spectrogram.resample(audio.samples, audio.rate, SAMPLE_RATE).numpy()
    f["waveform_16k"] = np.clip(np.round(signal * SCALE), -SCALE, SCALE - 1).astype(np.int16)
    f["audio_duration"], f["audio_source"] = audio.duration, audio.source


class Waveform16k(Representation):
    """The raw waveform: `inputs` (samples,) float32 in [-1, 1] and its `length`."""

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        return (Step("waveform_16k", step_waveform_16k, ("waveform_16k", "audio_duration", "audio_source")),)

    def render(self, f: Features) -> dict[str, bytes]:
        return {"npy": npy(f["waveform_16k"])}

    def sample_fields(self, f: Features) -> dict:
        return {"samples": int(len(f["waveform_16k"])), "sample_rate": SAMPLE_RATE}

    def decode_inputs(self, members: dict[str, bytes], meta: dict, options, split: str) -> dict:
        import torch

        samples = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
        return {"inputs": torch.from_numpy(samples.astype(np.float32) / SCALE), "length": len(samples)}

    def assemble(self, batch: dict, device=None) -> dict:
        """{"waveform": (B, samples) float32, zero-padded, "length": (B,) int64} on `device`: the
        samples and how many of each row are the clip's (the encoders' attention mask)."""
        import torch

        waveform, length = batch["inputs"], torch.as_tensor(batch["length"])
        if device is not None:
            waveform, length = waveform.to(device, non_blocking=True), length.to(device, non_blocking=True)
        return {"waveform": waveform, "length": length}

    def preview(self, members: dict[str, bytes]):
        """The waveform's envelope: each column spans the lowest to the highest sample of its stretch."""
        from PIL import Image, ImageDraw

        from ..media.pictures import BACKGROUND, SPEC_H, SPEC_W

        x = np.load(io.BytesIO(members["npy"]), allow_pickle=False).astype(np.float32) / SCALE
        img = Image.new("RGB", (SPEC_W, SPEC_H), BACKGROUND)
        draw, mid = ImageDraw.Draw(img), SPEC_H / 2
        for col, part in enumerate(np.array_split(x, SPEC_W)):
            if len(part):
                draw.line([(col, mid - part.max() * mid), (col, mid - part.min() * mid)], fill=(40, 40, 160))
        return img


WAVEFORM_16K = Waveform16k(
    name="waveform-16k", modality="audio", split_family="2d", layout="waveform", paper=False,
    description="the clip's 16 kHz waveform (the official WAV's samples, int16), for wav2vec 2.0, HuBERT, WavLM "
                "and Whisper; loaded as float32 in [-1, 1]",
    shape="(samples,) float32 in [-1, 1], with its length",
    members={"npy": {"list": "int16"}},
    metadata_fields={"samples": "int64", "sample_rate": "int64"},
    needs=("waveform_16k",),
    params={"waveform": {"sample_rate": SAMPLE_RATE, "storage": "int16 .npy, the WAV's own samples (value / 32768 in [-1, 1])",
                         "source": "AudioWAV as it is; the FLV's audio track resampled to 16 kHz and rounded when there is no WAV",
                         "reference": "EmoBox (emo-box/EmoBox): the 16 kHz waveform fed to speech SSL encoders"}},
)
