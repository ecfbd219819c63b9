"""The 16 kHz -> 22,050 Hz resampler: no mirror images above 8 kHz, and librosa's mel below 7 kHz.

The CREMA-D WAVs are 16 kHz, so nothing belongs above 8 kHz in their 22,050 Hz mel spectrogram;
the paper's pipeline (`librosa.load(path, sr=22050)`, soxr "HQ") leaves the 46 mel bands above
8 kHz at the -80 dB floor. torchaudio's default resampler mirrors 5-8 kHz content there only 5-16
dB down (a 7 kHz tone: its 9 kHz image at -15 dB); every check below fails with it
(`test_checks_fail_with_torchaudio_defaults`).
"""

import numpy as np
import pytest
import torch

from crema_tools import synthetic
from crema_tools.media import decode as media
from crema_tools.media import spectrogram

SOURCE_RATE = 16_000
FLOOR = -spectrogram.TOP_DB


def band_edges() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge (Hz) of each of the N_MELS Slaney triangles of spectrogram.mel_power."""
    import librosa

    f = librosa.mel_frequencies(spectrogram.N_MELS + 2, fmin=0.0, fmax=spectrogram.SAMPLE_RATE / 2)
    return f[:-2], f[2:]


LOWER, UPPER = band_edges()
ABOVE_8K = LOWER >= SOURCE_RATE / 2  # bands that only see what lies above the source's Nyquist frequency
BELOW_7K = UPPER <= 7000
BETWEEN = ~ABOVE_8K & ~BELOW_7K  # the resamplers' transition bands


def faded_tone(freq: float, seconds: float = 2.5, rate: int = SOURCE_RATE) -> np.ndarray:
    """A 0.5-amplitude tone with 0.1 s raised-cosine fades, so clip edges add no broadband click."""
    t = np.arange(int(seconds * rate)) / rate
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.1)
    return (0.5 * np.sin(2 * np.pi * freq * t) * (0.5 - 0.5 * np.cos(np.pi * ramp))).astype(np.float32)


def mel_db(signal_22k: torch.Tensor) -> np.ndarray:
    return spectrogram.to_db(spectrogram.mel_power(signal_22k)).numpy()


def librosa_mel_db(path) -> np.ndarray:
    """The paper's pipeline: librosa's default resampler, then its mel spectrogram with PARAMS."""
    import librosa

    p = spectrogram.PARAMS
    y, _ = librosa.load(path, sr=p["sample_rate"])
    power = librosa.feature.melspectrogram(y=y, sr=p["sample_rate"], n_fft=p["n_fft"], hop_length=p["hop_length"],
                                           n_mels=p["n_mels"], power=p["power"])
    return librosa.power_to_db(power, ref=np.max, top_db=p["top_db"])


def image_bands_max(resample, freq: float) -> float:
    """Loudest mel bin (dB re clip max) above 8 kHz after resampling a tone at `freq` < 8 kHz."""
    return float(mel_db(resample(faded_tone(freq), SOURCE_RATE))[ABOVE_8K].max())


def differences(resample, signal: np.ndarray, tmp_path) -> dict[str, float]:
    """Largest |dB difference| from librosa's pipeline, per frequency region, for a 16 kHz WAV."""
    path = tmp_path / "voice.wav"
    synthetic.write_wav(path, signal, SOURCE_RATE)
    audio = media.read_wav(path, "voice.wav")  # as the build reads AudioWAV
    ours, ref = mel_db(resample(audio.samples, audio.rate)), librosa_mel_db(path)
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    return {"below_7k": float(diff[BELOW_7K].max()), "7k_8k": float(diff[BETWEEN].max()),
            "above_8k": float(diff[ABOVE_8K].max())}


def torchaudio_default(samples: np.ndarray, rate: int) -> torch.Tensor:
    import torchaudio

    with torch.inference_mode():
        return torchaudio.transforms.Resample(rate, spectrogram.SAMPLE_RATE)(torch.from_numpy(samples))


VOICES = {
    "synthetic.speech": lambda: synthetic.speech(synthetic.design("1001_DFA_ANG_XX"), SOURCE_RATE),
    "broadband": synthetic.broadband_voice,
}


def test_band_regions():
    assert (ABOVE_8K.sum(), BELOW_7K.sum(), BETWEEN.sum()) == (46, 444, 22)


@pytest.mark.parametrize("freq", [7000.0, 7500.0])
def test_tone_below_8k_leaves_bands_above_8k_at_the_floor(freq):
    # measured: exactly the -80 dB floor (the 7 kHz tone's 9 kHz image is about -130 dB re the tone)
    assert image_bands_max(spectrogram.resample, freq) == FLOOR


@pytest.mark.parametrize("voice", VOICES)
def test_speech_mel_matches_librosa_pipeline(voice, tmp_path):
    d = differences(spectrogram.resample, VOICES[voice](), tmp_path)
    # measured: below 7 kHz 0.10 dB (synthetic.speech) and 0.005 dB (broadband), every bin, floor
    # included; 7-8 kHz, where the two filters' transition bands differ, 3.1 and 3.7 dB; above 8 kHz
    # 0.4 and 0 dB (both at or near the floor). torchaudio's defaults: 1.7, 37 and 33 dB.
    assert d["below_7k"] <= 1.0, d
    assert d["above_8k"] <= 1.0, d
    assert d["7k_8k"] <= 6.0, d


def test_checks_fail_with_torchaudio_defaults(tmp_path):
    assert image_bands_max(torchaudio_default, 7000.0) > -20.0  # the 9 kHz image, about -16 dB
    d = differences(torchaudio_default, synthetic.broadband_voice(), tmp_path)
    assert d["below_7k"] > 1.0 and d["above_8k"] > 20.0 and d["7k_8k"] > 20.0, d


def test_resampler_is_the_recorded_one_and_deterministic():
    r = spectrogram._resampler(SOURCE_RATE)
    recorded = spectrogram.PARAMS["resampling"]
    assert (r.resampling_method, r.lowpass_filter_width, r.rolloff, r.beta) == (
        recorded["resampling_method"], recorded["lowpass_filter_width"], recorded["rolloff"], recorded["beta"])
    x = synthetic.broadband_voice(seconds=1.0)
    a, b = spectrogram.resample(x, SOURCE_RATE), spectrogram.resample(x.copy(), SOURCE_RATE)
    assert a.shape == (22050,) and a.dtype == torch.float32
    assert torch.equal(a, b)
