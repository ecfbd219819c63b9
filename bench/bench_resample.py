"""Resampling 16 kHz -> 22,050 Hz: mirror-image suppression and speed, torchaudio's default against
the build's resampler (spectrogram.RESAMPLER), with soxr "HQ" (librosa's default) for reference.

Image suppression: a 16 kHz tone at f < 8 kHz leaves a mirror image at 16 kHz - f after upsampling;
its level re the tone, from a Kaiser-windowed (beta 24) float64 FFT of the middle half of a 2.5 s
faded tone. Speed: median CPU time (time.thread_time) to resample one 2.5 s clip, torch limited to one thread
(per core), the resamplers timed in alternation.
Filter response: each resampler's gain on a frequency grid (tones below 8 kHz, their images above).
Mel difference: largest |dB| difference from librosa's pipeline (librosa.load at 22,050 Hz, then
its mel spectrogram with spectrogram.PARAMS, dB re max) for a speech-like 16 kHz WAV.

    python bench/bench_resample.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
from common import FULL_CORPUS_CLIPS, machine, table  # noqa: E402

from crema_tools import synthetic  # noqa: E402
from crema_tools.media import decode as media  # noqa: E402
from crema_tools.media import spectrogram

RATE = 16_000
CLIP_SECONDS = 2.5


def faded_tone(freq: float, seconds: float = CLIP_SECONDS) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.1)
    return (0.5 * np.sin(2 * np.pi * freq * t) * (0.5 - 0.5 * np.cos(np.pi * ramp))).astype(np.float32)


def image_db(resample, freq: float) -> float:
    y = np.asarray(resample(faded_tone(freq)), dtype=np.float64)
    seg = y[len(y) // 4: len(y) - len(y) // 4]
    mag = np.abs(np.fft.rfft(seg * np.kaiser(len(seg), 24.0)))
    f = np.fft.rfftfreq(len(seg), 1 / spectrogram.SAMPLE_RATE)
    tone = mag[np.abs(f - freq) < 30].max()
    image = mag[np.abs(f - (RATE - freq)) < 30].max()
    return float(20 * np.log10(max(image, 1e-300) / tone))


def ms_per_clip(resamplers: list, repeats: int) -> list[float]:
    """Median CPU ms per 2.5 s clip of each resampler. CPU time of this thread (torch runs one), not
    wall time, and the resamplers timed in alternation: other work on the machine then weighs
    little, and on all of them alike."""
    x = synthetic.speech(synthetic.design("1001_DFA_ANG_XX"), RATE)[: int(CLIP_SECONDS * RATE)]
    x = np.pad(x, (0, int(CLIP_SECONDS * RATE) - len(x)))
    for resample in resamplers:
        for _ in range(5):
            resample(x)
    times: list[list[float]] = [[] for _ in resamplers]
    for _ in range(repeats):
        for resample, t in zip(resamplers, times):
            start = time.thread_time()
            resample(x)
            t.append(time.thread_time() - start)
    return [1e3 * float(np.median(t)) for t in times]


def mel_differences(resample, wav: Path) -> tuple[float, float, float] | None:
    try:
        import librosa
    except ImportError:
        return None
    p = spectrogram.PARAMS
    y, _ = librosa.load(wav, sr=p["sample_rate"])
    ref = librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=p["sample_rate"], n_fft=p["n_fft"], hop_length=p["hop_length"], n_mels=p["n_mels"], power=p["power"]),
        ref=np.max, top_db=p["top_db"])
    audio = media.read_wav(wav, wav.name)
    signal = torch.as_tensor(np.asarray(resample(audio.samples), dtype=np.float32))
    ours = spectrogram.to_db(spectrogram.mel_power(signal)).numpy()
    edges = librosa.mel_frequencies(p["n_mels"] + 2, fmin=0.0, fmax=p["sample_rate"] / 2)
    lower, upper = edges[:-2], edges[2:]
    diff = np.abs(ours - ref)
    return (float(diff[upper <= 7000].max()), float(diff[(upper > 7000) & (lower < 8000)].max()),
            float(diff[lower >= 8000].max()))


def torchaudio_resampler(dtype=torch.float32, **kw):
    r = torchaudio.transforms.Resample(RATE, spectrogram.SAMPLE_RATE, dtype=dtype, **kw)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return r(torch.from_numpy(np.asarray(x, dtype=np.float64 if dtype == torch.float64 else np.float32))).numpy()
    return run


def gain_db(resample, freq: float) -> float:
    """The filter's gain at `freq`: a unit tone's level below 8 kHz, the image of a unit tone at
    16 kHz - freq above it. Single-frequency DFT of the middle half, Kaiser window (beta 24), float64."""
    t = np.arange(int(CLIP_SECONDS * RATE)) / RATE
    y = np.asarray(resample(np.sin(2 * np.pi * (freq if freq < RATE / 2 else RATE - freq) * t)), dtype=np.float64)
    seg = y[len(y) // 4: len(y) - len(y) // 4]
    w = np.kaiser(len(seg), 24.0)
    n = np.arange(len(seg)) / spectrogram.SAMPLE_RATE
    amp = 2 * abs(np.sum(seg * w * np.exp(-2j * np.pi * freq * n))) / w.sum()
    return float(20 * np.log10(max(amp, 1e-300)))


def response_row(name: str, resample) -> tuple:
    """Passband edges and stopband of a resampler's filter, on a 10 Hz grid (50 Hz above 9 kHz)."""
    f = np.concatenate([np.arange(5000.0, 9000.0, 10.0), np.arange(9000.0, 11001.0, 50.0)])
    g = np.array([gain_db(resample, x) for x in f])
    first = lambda mask: f"{f[np.argmax(mask)]:.0f}" if mask.any() else "-"  # noqa: E731
    stop = np.maximum.accumulate(g[::-1])[::-1] < -120  # from here on, every frequency at least 120 dB down
    return (name, first(g < -0.1), first(g < -3), first(stop), f"{g[f >= 8000].max():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    new = {k: spectrogram.RESAMPLER[k] for k in ("resampling_method", "lowpass_filter_width", "rolloff", "beta")}
    cases = [
        ("torchaudio default (old)", "sinc_interp_hann, width 6, rolloff 0.99", torchaudio_resampler()),
        ("spectrogram.resample (new)",
         f"sinc_interp_kaiser, width {new['lowpass_filter_width']}, rolloff {new['rolloff']}, beta {new['beta']:.2f}",
         lambda x: spectrogram.resample(x, RATE).numpy()),
    ]
    try:
        import soxr

        cases.append((f"soxr {soxr.__version__} HQ (librosa's default; reference)", "quality HQ",
                      lambda x: soxr.resample(x, RATE, spectrogram.SAMPLE_RATE, quality="HQ")))
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        synthetic.write_wav(wav, synthetic.broadband_voice(CLIP_SECONDS, RATE), RATE)
        rows = []
        speeds = ms_per_clip([resample for _, _, resample in cases], args.repeats)
        for (name, how, resample), ms in zip(cases, speeds):
            mel = mel_differences(resample, wav)
            rows.append((name, how, f"{image_db(resample, 7000.0):.1f}", f"{image_db(resample, 7500.0):.1f}",
                         f"{ms:.2f}", f"{ms * FULL_CORPUS_CLIPS / 1e3:.0f}",
                         *([f"{d:.2f}" for d in mel] if mel else ["n/a"] * 3)))
    print(f"Machine: {machine()}; one process, torch.set_num_threads(1)")
    print(f"16 kHz -> {spectrogram.SAMPLE_RATE} Hz; speed: median CPU time of {args.repeats} runs on one 2.5 s clip; "
          "mel: max |dB| difference from librosa's pipeline, speech-like WAV (harmonics to 7.9 kHz).\n")
    response = [response_row("torchaudio default (old), float64", torchaudio_resampler(torch.float64)),
                response_row("spectrogram.resample's filter (new), float64", torchaudio_resampler(torch.float64, **new))]
    if len(cases) > 2:
        response.append(response_row(cases[2][0], cases[2][2]))
    print(table(rows, ("resampler", "filter", "7 kHz image dB", "7.5 kHz image dB", "CPU ms / 2.5 s clip",
                       f"CPU s / {FULL_CORPUS_CLIPS} clips", "mel dB < 7 kHz", "mel dB 7-8 kHz", "mel dB > 8 kHz")))
    print("\nFilter response (tones and their images; the torchaudio filters computed in float64, as designed):\n")
    print(table(response, ("resampler", "-0.1 dB from Hz", "-3 dB from Hz", "-120 dB and below from Hz",
                           "worst gain above 8 kHz, dB")))


if __name__ == "__main__":
    main()
