"""The AV-MAE line's Kaldi fbank and the speech-SSL line's 16 kHz waveform, against their own code.

`hicmae_wav2fbank` below is HiCMAE's `_wav2fbank` (sunlicai/HiCMAE, kinetics_av.py at commit
cdd28d4, without mixup and roll-mag augmentation, which their evaluation leaves off) and the
normalisation of its `load_audio`, applied to the waveform `torchaudio.load` gives them: the
WAV's int16 samples / 32768, shape (1, N).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio

import crema_tools
from crema_tools.builder.pipeline import build
from crema_tools.errors import LoadError
from crema_tools.synthetic import generate_corpus

CLIPS = ["1001_DFA_ANG_XX", "1001_DFA_HAP_XX", "1002_IEO_SAD_HI", "1002_DFA_NEU_XX"]
NO_WAV = "1002_DFA_NEU_XX"  # its audio comes from the FLV's MP3 track


def hicmae_wav2fbank(waveform: torch.Tensor, sr: int, target_length: int, melbins: int = 128) -> torch.Tensor:
    waveform = waveform - waveform.mean()
    fbank = torchaudio.compliance.kaldi.fbank(waveform, htk_compat=True, sample_frequency=sr, use_energy=False,
                                              window_type='hanning', num_mel_bins=melbins, dither=0.0, frame_shift=10)
    n_frames = fbank.shape[0]
    p = target_length - n_frames
    if p > 0:
        m = torch.nn.ZeroPad2d((0, 0, 0, p))
        fbank = m(fbank)
    elif p < 0:
        fbank = fbank[0:target_length, :]
    return fbank


def hicmae_audio(wav: Path, target_length: int) -> torch.Tensor:
    norm_mean, norm_std = -4.2677393, 4.5689974  # run_class_finetuning_av.py, norm_stats['audioset']
    fbank = hicmae_wav2fbank(torch.from_numpy(wav_samples(wav)[None] / 32768.0).float(), 16000, target_length)
    fbank = (fbank - norm_mean) / (norm_std * 2)
    return fbank.unsqueeze(0)


def wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 16000 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int64)


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> float:
    """The highest correlation of `a` with `b` shifted by up to `max_lag` samples (an MP3 decoder delays its output)."""
    n = min(len(a), len(b)) - 2 * max_lag
    ref = b[max_lag: max_lag + n]
    return max(float(np.corrcoef(a[lag: lag + n], ref)[0, 1]) for lag in range(0, 2 * max_lag, 4))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    raw = tmp_path_factory.mktemp("raw")
    generate_corpus(raw, CLIPS, seed=3)
    (raw / "AudioWAV" / f"{NO_WAV}.wav").rename(raw / f"{NO_WAV}.wav")  # kept aside, as the reference
    out = tmp_path_factory.mktemp("out")
    build(raw, out, ["fbank", "waveform-16k"], progress=False, protocol="speaker")
    return raw, out


def items(out: Path, variant: str, **options) -> dict[str, dict]:
    return {x["clip_id"]: x for split in ("train", "test") for x in crema_tools.load(out, variant, split, **options)}


@pytest.mark.parametrize("target_length", [256, 1024])
def test_fbank_is_hicmae_wav2fbank(built, target_length):
    raw, out = built
    got = items(out, "fbank", target_length=target_length)
    assert sorted(got) == sorted(CLIPS)
    for cid, x in got.items():
        if cid == NO_WAV:
            continue
        want = hicmae_audio(raw / "AudioWAV" / f"{cid}.wav", target_length)
        assert x["inputs"].shape == want.shape == (1, target_length, 128)
        assert torch.equal(x["inputs"], want), cid
        assert 0 < x["length"] < 256 and (x["inputs"][0, x["length"]:] == (4.2677393 / (4.5689974 * 2))).all()


def test_fbank_raw_and_unpadded(built):
    raw, out = built
    x = items(out, "fbank", target_length=None, normalise=None)["1001_DFA_ANG_XX"]
    want = hicmae_wav2fbank(torch.from_numpy(wav_samples(raw / "AudioWAV/1001_DFA_ANG_XX.wav")[None] / 32768.0).float(),
                            16000, x["length"])
    assert x["inputs"].shape == (1, x["length"], 128) and torch.equal(x["inputs"][0], want)


def test_waveform_is_the_wav_exactly(built):
    raw, out = built
    got = items(out, "waveform-16k")
    for cid, x in got.items():
        reference = raw / "AudioWAV" / f"{cid}.wav" if cid != NO_WAV else raw / f"{NO_WAV}.wav"
        samples = wav_samples(reference)
        assert x["inputs"].dtype == torch.float32 and float(x["inputs"].abs().max()) <= 1.0
        if cid != NO_WAV:  # the WAV's own samples, bit for bit
            assert x["length"] == len(samples) and torch.equal(x["inputs"], torch.from_numpy(samples / 32768.0).float())
        else:  # from the FLV's 22,050 Hz MP3, resampled: the same voice, within MP3's loss and delay
            assert abs(x["length"] - len(samples)) < 0.05 * len(samples)
            assert best_correlation(x["inputs"].numpy(), samples / 32768.0) > 0.9
    batch = crema_tools.collate(list(got.values()))
    assert batch["inputs"].shape == (4, max(x["length"] for x in got.values()))


def test_load_dataset_reads_both_without_decoders(built):
    from datasets import load_dataset

    _, out = built
    wave_row = load_dataset(str(out), "waveform-16k", split="test")[0]
    assert len(wave_row["npy"]) == wave_row["json"]["samples"] and wave_row["json"]["sample_rate"] == 16000
    fbank_row = load_dataset(str(out), "fbank", split="test")[0]
    assert np.asarray(fbank_row["npy"]).shape == (fbank_row["json"]["n_frames"], 128)


def test_options_are_checked_by_their_representation(built):
    _, out = built
    with pytest.raises(LoadError, match="target_length must be a positive number of frames or None, not 0"):
        crema_tools.load(out, "fbank", "train", target_length=0)
    with pytest.raises(LoadError, match="normalise must be one of audioset or None"):
        crema_tools.load(out, "fbank", "train", normalise="imagenet")
    with pytest.raises(LoadError, match="waveform-16k: target_length apply to the fbank config only"):
        crema_tools.load(out, "waveform-16k", "train", target_length=1024)
    with pytest.raises(LoadError, match="fbank: channels apply to the reference paper's configs only"):
        crema_tools.load(out, "fbank", "train", channels=1)
