import numpy as np
import torch

from crema_tools.media import spectrogram


def test_mel_matches_librosa():
    import librosa

    rng = np.random.default_rng(0)
    t = np.arange(int(1.3 * 22050)) / 22050
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = spectrogram.mel_power(torch.from_numpy(x)).numpy()
    ref = librosa.feature.melspectrogram(y=x, sr=22050, n_fft=2048, hop_length=512, n_mels=512, power=2.0)
    assert ours.shape == ref.shape == (512, 1 + len(x) // 512)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7 * ref.max())


def test_resample_to_22050():
    x = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    y = spectrogram.resample(x, 16000)
    assert y.shape == (22050,)
    peak = np.argmax(np.abs(np.fft.rfft(y.numpy())))
    assert abs(peak * 22050 / len(y) - 440) < 2


def test_db_image_orientation_and_range():
    power = torch.full((512, 100), 1e-12)
    power[:20] = 1.0  # energy in the lowest bands only
    img = spectrogram.db_image(spectrogram.to_db(power), 224, 224)
    assert img.shape == (224, 224) and img.dtype == np.uint8
    assert img[-1].min() == 255 and img[0].max() == 0  # low frequencies at the bottom, floor at -80 dB
