"""The `ogm-ge` config: OGM-GE's frames and spectrogram, decoded as their CramedDataset returns them.

The spectrogram is compared with the straightforward librosa computation of OGM-GE's
CramedDataset (librosa.load at 22,050 Hz, np.tile to 3 s, clip, librosa.stft, log) on the same
clips. What differs is the resampler (librosa's soxr_hq against crema_tools.spectrogram.resample)
and the float16 storage. Measured here on the four synthetic clips, as the peak-relative
magnitude error max |e^ours - e^librosa| / max e^librosa, stored float16 spectrogram:

| crema-tools resampler (torchaudio) | below 4 kHz | below 7 kHz | all bins | mean abs log error below 4 kHz |
|---|---|---|---|---|
| Kaiser sinc, width 128, rolloff 0.96 | 9.0e-4 | 9.0e-4 | 5.3e-3 | 4.2e-4 |
| Hann sinc, width 6, rolloff 0.99 (torchaudio's default) | 1.4e-3 | 6.1e-3 | 2.4e-2 | 7.7e-4 |

Below 4 kHz float16 dominates with the Kaiser resampler: a log value under 4 is kept to 2^-11
of itself, 0.1% of the bin's magnitude at the peak. The largest differences are at the 8 kHz
edge of the 16 kHz source, where resamplers differ most. The tolerances asserted: 3e-3 below
4 kHz, 5e-2 over all bins, 5e-3 mean log error below 4 kHz. Fed the same 22,050 Hz signal,
librosa's STFT and ours agree to 3e-7 of the peak, so that check allows float16 rounding only:
4e-3 of each bin (2^-8 in log units) and 1e-6 of the peak for bins near the 1e-7 floor.
"""

import io
import json
import os

import numpy as np
import pytest
import torch
from helpers import shard_samples
from PIL import Image

import crema_tools
from crema_tools import ogm_ge
from crema_tools.builder.pipeline import build
from crema_tools.corpus import EMOTIONS, OGM_GE_CLASS_ORDER, assign_splits
from crema_tools.errors import LoadError
from crema_tools.media import spectrogram
from crema_tools.media.decode import read_wav

# two clips of each OGM-GE part; 1002_IEO_SAD_HI lasts 2 s, so it has 2 frames at 1 fps, the others 3
CLIPS = ["1001_DFA_HAP_XX", "1001_DFA_SAD_XX", "1001_DFA_ANG_XX", "1002_IEO_SAD_HI"]
N = ogm_ge.SAMPLE_RATE * ogm_ge.SECONDS


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ogm")
    build(corpus, out, ["ogm-ge"], protocol="ogm-ge", clip_ids=CLIPS, progress=False)
    return out


def test_splits_members_and_report(built):
    report = json.loads((built / "ogm-ge" / "report.json").read_text())
    expected = assign_splits("ogm-ge")
    assert report["skipped"] == [] and report["samples"] == len(CLIPS)
    assert {s: v["samples"] for s, v in report["splits"].items()} == {"train": 2, "test": 2}
    assert report["params"]["spectrogram"]["n_fft"] == 512 and report["params"]["spectrogram"]["hop_length"] == 353
    for key, m in dict(shard_samples(built / "ogm-ge")).items():
        meta = json.loads(m["json"])
        assert set(m) == {"cls", "jpg", "json", "npy"} and meta["split"] == expected[key]
        assert int(m["cls"]) == meta["label"] == EMOTIONS.index(meta["emotion"])  # crema-tools order stored
        assert meta["audio_source"] == "wav" and meta["face_box"] is None


def test_frames_are_the_first_of_every_second(built, corpus):
    import av

    for key, m in dict(shard_samples(built / "ogm-ge")).items():
        meta = json.loads(m["json"])
        with av.open(str(corpus / "VideoFlash" / f"{key}.flv")) as container:
            stream = container.streams.video[0]
            fps = int(float(stream.average_rate))  # OpenCV's int(CAP_PROP_FPS); PyAV 19's AVRational takes no int()
            source = [f.to_ndarray(format="rgb24").astype(np.float32) for f in container.decode(stream)]
        kept = [i for i in range(len(source)) if i % fps == 0]  # video2frame_update, 1 frame per second
        assert fps == meta["source_fps"] == 30 and meta["frame_indices"] == kept
        assert meta["n_frames"] == len(kept) == -(-len(source) // fps)
        strip = np.asarray(Image.open(io.BytesIO(m["jpg"])).convert("RGB"), dtype=np.float32)
        assert strip.shape == (360, 480 * len(kept), 3)  # the full frames, side by side
        for i, index in enumerate(kept):
            frame = strip[:, 480 * i: 480 * (i + 1)]
            dist = [np.abs(frame - s).mean() for s in source]
            assert dist[index] < 1.5 and dist[index] <= min(dist) + 1e-6, (key, i)  # JPEG q95 of that frame


def librosa_reference(wav):
    """OGM-GE's CramedDataset, as written there."""
    import librosa

    samples, rate = librosa.load(wav, sr=22050)
    resamples = np.tile(samples, 3)[:22050 * 3]
    resamples[resamples > 1.] = 1.
    resamples[resamples < -1.] = -1.
    return np.log(np.abs(librosa.stft(resamples, n_fft=512, hop_length=353)) + 1e-7)


def test_spectrogram_matches_librosa(built, corpus):
    import librosa

    below_4k = np.fft.rfftfreq(512, 1 / 22050) < 4000
    for key, m in dict(shard_samples(built / "ogm-ge")).items():
        ours, _, _ = ogm_ge.decode(m, json.loads(m["json"]))
        wav = corpus / "AudioWAV" / f"{key}.wav"
        ref = librosa_reference(wav)
        assert ours.shape == ref.shape == (257, 188) and ours.dtype == torch.float32
        ours, mag, ref_mag = ours.numpy(), np.exp(ours.numpy()), np.exp(ref)
        peak = ref_mag.max()
        # end to end, librosa's resampler: differences come from the resamplers (measured above)
        assert np.abs(mag - ref_mag)[below_4k].max() <= 3e-3 * peak
        assert np.abs(ours - ref)[below_4k].mean() <= 5e-3
        assert np.abs(mag - ref_mag).max() <= 5e-2 * peak
        # the same 22,050 Hz signal through librosa: only float16 storage differs
        audio = read_wav(wav, key)
        x = np.clip(np.tile(spectrogram.resample(audio.samples, audio.rate).numpy(), 3)[:N], -1, 1)
        same = np.abs(librosa.stft(x, n_fft=512, hop_length=353))
        np.testing.assert_allclose(mag, same + 1e-7, rtol=4e-3, atol=1e-6 * same.max())


def test_short_clip_is_tiled_to_3_s():
    x = torch.sin(torch.arange(11025) * 0.3)  # 0.5 s
    assert ogm_ge.log_stft(x).shape == (257, 188)
    assert np.array_equal(ogm_ge.log_stft(x), ogm_ge.log_stft(torch.cat([x, x])))  # the same 3 s signal


def test_decode_shapes_and_test_transform(built):
    m = dict(shard_samples(built / "ogm-ge"))["1001_DFA_HAP_XX"]
    meta = json.loads(m["json"])
    spec, images, label = ogm_ge.decode(m, meta)
    assert spec.shape == (257, 188) and images.shape == (3, 1, 224, 224) and images.dtype == torch.float32
    # test transform: the first frame resized to 224x224 (bilinear), then ImageNet mean and std
    first = Image.open(io.BytesIO(m["jpg"])).convert("RGB").crop((0, 0, 480, 360))
    expected = np.asarray(first.resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255
    mean, std = np.array(ogm_ge.IMAGENET_MEAN), np.array(ogm_ge.IMAGENET_STD)
    np.testing.assert_allclose(images[:, 0].permute(1, 2, 0).numpy() * std + mean, expected, atol=1e-5)
    _, three, _ = ogm_ge.decode(m, meta, frames=3)
    assert three.shape == (3, 3, 224, 224) and not torch.equal(three[:, 0], three[:, 2])
    # what OGM-GE's training loop does with a batch
    batch = torch.utils.data.default_collate([ogm_ge.decode(m, meta), ogm_ge.decode(m, meta)])
    assert batch[0].unsqueeze(1).shape == (2, 1, 257, 188) and batch[1].shape == (2, 3, 1, 224, 224)
    assert batch[2].tolist() == [label, label]


def test_train_transform_and_picks_are_random_and_seeded(built):
    m = dict(shard_samples(built / "ogm-ge"))["1001_DFA_ANG_XX"]
    meta = json.loads(m["json"])

    def draw(seed):
        torch.manual_seed(seed)
        return ogm_ge.decode(m, meta, frames=2, train=True)[1]

    a, b = draw(0), draw(0)
    assert a.shape == (3, 2, 224, 224) and torch.equal(a, b) and not torch.equal(a, draw(1))
    assert not torch.equal(a, ogm_ge.decode(m, meta, frames=2)[1])  # the test transform differs
    g = torch.Generator().manual_seed(0)
    picks = [ogm_ge.frame_picks(3, 2, "random", g) for _ in range(50)]
    assert all(p == sorted(set(p)) and len(p) == 2 and 0 <= p[0] and p[1] < 3 for p in picks)
    assert len({tuple(p) for p in picks}) == 3  # every pair of the three frames comes up
    assert len(ogm_ge.frame_picks(2, 3, "random", g)) == 3  # fewer frames than asked: with replacement
    assert ogm_ge.frame_picks(2, 3, "first") == [0, 1, 1]


def test_label_orders(built):
    for m in dict(shard_samples(built / "ogm-ge")).values():
        meta = json.loads(m["json"])
        ogm = ogm_ge.decode(m, meta)[2]
        crema = ogm_ge.decode(m, meta, class_order="crema-d")[2]
        assert OGM_GE_CLASS_ORDER[ogm] == EMOTIONS[crema] == meta["emotion"] and crema == int(m["cls"])
    assert [ogm_ge.label_index(e) for e in ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")] == list(range(6))
    with pytest.raises(LoadError, match="class_order"):
        ogm_ge.decode(m, meta, class_order="alphabetical")
    with pytest.raises(LoadError, match="frames"):
        ogm_ge.decode(m, meta, frames=0)


def test_load_dataset_reads_the_config(built):
    from datasets import load_dataset

    ds = load_dataset(str(built), "ogm-ge", split="test")
    row = ds[0]
    assert row["jpg"].size == (480 * row["json"]["n_frames"], 360)
    assert np.asarray(row["npy"]).shape == (257, 188) and row["cls"] == row["json"]["label"]


def test_rebuild_is_byte_identical(built, corpus, tmp_path):
    build(corpus, tmp_path, ["ogm-ge"], protocol="ogm-ge", clip_ids=CLIPS, progress=False, workers=1)
    for a in sorted((built / "ogm-ge").iterdir()):
        assert (tmp_path / "ogm-ge" / a.name).read_bytes() == a.read_bytes(), a.name


def test_crema_tools_load_yields_their_items(built):
    """`crema_tools.load(..., layout="ogm-ge")` gives exactly what decode gives for each sample."""
    import crema_tools

    by_key = dict(shard_samples(built / "ogm-ge"))
    items = list(crema_tools.load(built, "ogm-ge", "test", layout="ogm-ge", frames_per_clip=2))
    assert len(items) == 2
    for spec, images, label in items:
        match = [k for k, m in by_key.items()
                 if torch.equal(ogm_ge.decode(m, json.loads(m["json"]), frames=2)[0], spec)]
        (key,) = match
        want = ogm_ge.decode(by_key[key], json.loads(by_key[key]["json"]), frames=2)
        assert torch.equal(images, want[1]) and label == want[2] and images.shape == (3, 2, 224, 224)
    loader = torch.utils.data.DataLoader(crema_tools.load(built, "ogm-ge", "train", frames_per_clip=1), batch_size=2)
    spec, images, label = next(iter(loader))
    assert spec.shape == (2, 257, 188) and images.shape == (2, 3, 1, 224, 224) and label.dtype == torch.int64
    with pytest.raises(LoadError, match="2d-audio: layout apply to the ogm-ge config only"):
        crema_tools.load(built, "2d-audio", "train", layout="ogm-ge")
    with pytest.raises(LoadError, match="channels and dtype do not apply"):
        crema_tools.load(built, "ogm-ge", "train", dtype="uint8")


def test_fixed_pick_is_the_frame_their_loader_opens(built, tmp_path):
    """CramedDataset reads `image_samples[i]` of an unsorted `os.listdir` of the folder their
    `video2frame_update` wrote (`{count:05d}.jpg` for counts 0, 30, 60, ...): whichever file this
    filesystem lists first, every epoch. `frame_pick="fixed"` with that frame's index gives it."""
    samples = dict(shard_samples(built / "ogm-ge"))
    key, m = next((k, m) for k, m in samples.items() if json.loads(m["json"])["n_frames"] == 3)
    meta = json.loads(m["json"])
    folder = tmp_path / "Image-01-FPS" / key
    folder.mkdir(parents=True)
    for count in meta["frame_indices"]:
        (folder / "{0:05d}.jpg".format(count)).write_bytes(b"")
    image_samples = os.listdir(folder)  # their code, --fps 1: image_samples[0]
    index = sorted(image_samples).index(image_samples[0])
    strip = Image.open(io.BytesIO(m["jpg"])).convert("RGB")
    width = strip.width // meta["n_frames"]
    theirs = ogm_ge.image_transform(False)(strip.crop((index * width, 0, (index + 1) * width, strip.height)))
    for _ in range(3):  # the same frame every time, in training too (random crops aside)
        _, images, _ = ogm_ge.decode(m, meta, pick="fixed", fixed_index=index)
        assert torch.equal(images[:, 0], theirs)
        torch.manual_seed(0)
        a = ogm_ge.decode(m, meta, train=True, pick="fixed", fixed_index=index)[1]
        torch.manual_seed(0)
        b = ogm_ge.image_transform(True)(strip.crop((index * width, 0, (index + 1) * width, strip.height)))
        assert torch.equal(a[:, 0], b)
    item = next(iter(crema_tools.load(built, "ogm-ge", "test", frame_pick="fixed", fixed_index=index)))
    assert item[1].shape == (3, 1, 224, 224)
    with pytest.raises(LoadError, match="frame_pick must be one of random, first, fixed"):
        crema_tools.load(built, "ogm-ge", "test", frame_pick="listed")
