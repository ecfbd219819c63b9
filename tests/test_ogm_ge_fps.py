"""OGM-GE's `--fps N`: the frames their extraction keeps at N per second, and the ones their loader reads.

Their code (GeWu-Lab/OGM-GE_CVPR2022 at 343dc1d) is reduced into this file, not taken from ours:

- `data/CREMAD/video_preprocessing.py`, `video2frame_update` with `frame_kept_per_second=N`: reads
  the frames of the video in order, restarts a place counter at every multiple of the frame rate
  and saves a frame as `{count:05d}.jpg` when its place is a multiple of `int(fps / N)` below
  `int(fps / N) * N`; the folder is `Image-{N:02d}-FPS/<clip>/`;
- `dataset/CramedDataset.py`, `__getitem__` with `args.fps = N`: lists that folder with an
  unsorted `os.listdir`, draws `np.random.choice(len(files), size=N, replace=False)` (which raises
  when the folder holds fewer than N files) but then opens `files[0]`, ..., `files[N - 1]`.
"""

import io
import json
import os

import numpy as np
import pytest
import torch
from helpers import run_cli, shard_samples
from PIL import Image

import crema_tools
from crema_tools import ogm_ge
from crema_tools.builder.pipeline import build, check_options
from crema_tools.errors import BuildError, LoadError
from crema_tools.representations import BuildOptions, Features
from crema_tools.synthetic import generate_clip, generate_corpus

FPS = 3
CLIPS = ["1001_DFA_HAP_XX", "1002_IEO_SAD_HI"]  # 2.47 s (75 frames) and 2 s (60 frames)
SHORT = "1001_IEO_ANG_HI"  # made 0.5 s long: 15 frames, of which their --fps 3 keeps 2


def their_kept_counts(n_frames: int, fps: int = 30, kept_per_second: int = 1) -> list[int]:
    """The frame counts their extraction saves, for a video of `n_frames` frames at `fps`."""
    interval = int(fps / kept_per_second)
    kept, count, place = [], 0, 0
    while count < n_frames:
        if count % fps == 0:
            place = 0
        if place < interval * kept_per_second and place % interval == 0:
            kept.append(count)
        place += 1
        count += 1
    return kept


def their_loader_reads(folder, fps: int) -> list[int]:
    """The frame counts their loader opens from `folder`, in the order it stacks them."""
    image_samples = os.listdir(folder)
    np.random.choice(len(image_samples), size=fps, replace=False)  # drawn, then unused
    return [int(image_samples[i][:-4]) for i in range(fps)]


def their_folder(root, clip_id: str, n_frames: int, fps: int):
    folder = root / "Image-{:02d}-FPS".format(fps) / clip_id
    folder.mkdir(parents=True)
    for count in their_kept_counts(n_frames, 30, fps):  # written in time order, as theirs
        (folder / "{0:05d}.jpg".format(count)).write_bytes(b"")
    return folder


def decoded_frames(corpus, clip_id):
    import av

    with av.open(str(corpus / "VideoFlash" / f"{clip_id}.flv")) as container:
        stream = container.streams.video[0]
        assert int(stream.average_rate) == 30  # their int(CAP_PROP_FPS)
        return [f.to_ndarray(format="rgb24").astype(np.float32) for f in container.decode(stream)]


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("fps_corpus")
    generate_corpus(root, CLIPS, seed=0)
    generate_clip(root, SHORT, duration=0.5)
    return root


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("fps_out")
    build(raw, out, ["ogm-ge"], protocol="ogm-ge", progress=False, ogm_ge_fps=FPS)
    return out


def test_their_extraction_rule_at_1_2_and_3_per_second():
    # a 2.5 s clip at 30 fps (75 frames), and a 0.5 s one (15 frames)
    assert their_kept_counts(75, 30, 1) == ogm_ge.source_frame_indices(75, 30, 1) == [0, 30, 60]
    assert their_kept_counts(75, 30, 2) == ogm_ge.source_frame_indices(75, 30, 2) == [0, 15, 30, 45, 60]
    assert their_kept_counts(75, 30, 3) == ogm_ge.source_frame_indices(75, 30, 3) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert their_kept_counts(15, 30, 3) == ogm_ge.source_frame_indices(15, 30, 3) == [0, 10]
    assert their_kept_counts(15, 30, 1) == ogm_ge.source_frame_indices(15, 30, 1) == [0]
    for n in range(1, 160):
        for per_second in range(1, 31):
            assert ogm_ge.source_frame_indices(n, 30, per_second) == their_kept_counts(n, 30, per_second), (n, per_second)
        assert ogm_ge.source_frame_indices(n, 30) == list(range(0, n, 30))  # the 1 fps rule as it always was
    assert their_kept_counts(90, 30, 31) == []  # above the frame rate theirs keeps nothing
    with pytest.raises(ValueError, match="no 31 frames per second"):
        ogm_ge.source_frame_indices(90, 30, 31)


def test_build_stores_the_frames_their_extraction_keeps(built, raw):
    samples = dict(shard_samples(built / "ogm-ge"))
    assert sorted(samples) == sorted(CLIPS + [SHORT])
    for key, m in samples.items():
        meta = json.loads(m["json"])
        source = decoded_frames(raw, key)
        kept = their_kept_counts(len(source), 30, FPS)
        assert meta["frame_indices"] == kept and meta["n_frames"] == len(kept) and meta["source_fps"] == 30
        strip = np.asarray(Image.open(io.BytesIO(m["jpg"])).convert("RGB"), dtype=np.float32)
        assert strip.shape == (360, 480 * len(kept), 3)
        for i, count in enumerate(kept):
            frame = strip[:, 480 * i: 480 * (i + 1)]
            dist = [np.abs(frame - s).mean() for s in source]
            assert dist[count] < 1.5 and dist[count] <= min(dist) + 1e-6, (key, count)
    assert json.loads(samples[SHORT]["json"])["frame_indices"] == [0, 10]
    report = json.loads((built / "ogm-ge" / "report.json").read_text())
    assert report["params"]["frames"]["kept_per_second"] == FPS and "frame_kept_per_second=3" in report["params"]["frames"]["rule"]
    assert report["build"]["options"] == {"--ogm-ge-fps": FPS}
    assert "--variant ogm-ge --protocol ogm-ge --seed 0 --ogm-ge-fps 3" in (built / "README.md").read_text()


def test_fixed_pick_opens_what_their_loader_opens(built, raw, tmp_path):
    listing = ogm_ge.listing_order(tmp_path)
    assert sorted(listing) == list(range(ogm_ge.LISTING_FRAMES)) and not list(tmp_path.iterdir())  # cleaned up
    for key, m in dict(shard_samples(built / "ogm-ge")).items():
        meta = json.loads(m["json"])
        folder = their_folder(tmp_path, key, len(decoded_frames(raw, key)), FPS)
        strip = Image.open(io.BytesIO(m["jpg"])).convert("RGB")
        stored = {count: ogm_ge.image_transform(False)(strip.crop((480 * i, 0, 480 * (i + 1), 360)))
                  for i, count in enumerate(meta["frame_indices"])}
        _, images, _ = ogm_ge.decode(m, meta, frames=FPS, pick="fixed", listing=listing)
        if key == SHORT:  # two files for --fps 3: their np.random.choice raises; here the last listed repeats
            with pytest.raises(ValueError):
                their_loader_reads(folder, FPS)
            names = [int(n[:-4]) for n in os.listdir(folder)]
            theirs = names + [names[-1]]
        else:
            theirs = their_loader_reads(folder, FPS)
        assert len(theirs) == images.shape[1] == FPS
        for i, count in enumerate(theirs):
            assert torch.equal(images[:, i], stored[count]), (key, i, count)
    items = list(crema_tools.load(built, "ogm-ge", "train", frames_per_clip=FPS, frame_pick="fixed", listing=listing))
    assert len(items) == 2 and all(images.shape == (3, FPS, 224, 224) for _, images, _ in items)
    first = dict(shard_samples(built / "ogm-ge"))[CLIPS[0]]
    with pytest.raises(LoadError, match=r"listing has no frame 60; make it with ogm_ge.listing_order\(folder, frames=71\)"):
        ogm_ge.decode(first, json.loads(first["json"]), frames=FPS, pick="fixed", listing=tuple(range(60)))
    with pytest.raises(LoadError, match="listing must be frame numbers"):
        list(crema_tools.load(built, "ogm-ge", "test", frame_pick="fixed", listing="00000.jpg"))


def test_random_pick_is_their_select_index_on_a_sorted_listing(built):
    """The later fix: `select_index` (N distinct of the folder's files, sorted) applied to the sorted
    file names: any N distinct stored frames, in time order, each combination possible."""
    from itertools import combinations

    g = torch.Generator().manual_seed(0)
    n = 8  # the 2.47 s clip at 3 per second
    drawn = {tuple(ogm_ge.frame_picks(n, FPS, "random", g)) for _ in range(3000)}
    assert drawn == set(combinations(range(n), FPS))
    m = dict(shard_samples(built / "ogm-ge"))[CLIPS[0]]
    meta = json.loads(m["json"])
    strip = Image.open(io.BytesIO(m["jpg"])).convert("RGB")
    frames = [ogm_ge.image_transform(False)(strip.crop((480 * i, 0, 480 * (i + 1), 360))) for i in range(meta["n_frames"])]
    torch.manual_seed(1)
    _, images, _ = ogm_ge.decode(m, meta, frames=FPS, pick="random")
    places = [next(i for i, f in enumerate(frames) if torch.equal(images[:, k], f)) for k in range(FPS)]
    assert places == sorted(set(places))


def test_long_strips_wrap_into_rows():
    """Past 100 frames (20 or more per second on CREMA-D's longest clips) the strip wraps, so the JPEG
    stays under its 65,500-pixel limit; decode finds every frame where render put it."""
    n = 130
    colours = np.random.default_rng(0).integers(0, 256, (n, 3), dtype=np.uint8)
    f = Features("1001_DFA_ANG_XX")
    f["ogm_ge_frames"] = np.broadcast_to(colours[:, None, None, :], (n, 48, 64, 3)).copy()
    f["ogm_ge_spectrogram"] = np.zeros(ogm_ge.SPECTROGRAM_SHAPE, np.float32)
    members = ogm_ge.OGM_GE.render(f)
    assert Image.open(io.BytesIO(members["jpg"])).size == (64 * 100, 48 * 2)
    meta = {"clip_id": f.clip_id, "emotion": "ANG", "n_frames": n, "frame_indices": list(range(n))}
    _, images, _ = ogm_ge.decode(members, meta, frames=n, pick="first")
    mean, std = torch.tensor(ogm_ge.IMAGENET_MEAN), torch.tensor(ogm_ge.IMAGENET_STD)
    got = images.mean(dim=(2, 3)).T * std + mean
    dist = np.abs(got.numpy()[:, None] * 255 - colours[None].astype(np.float32)).sum(axis=2)
    assert (dist.argmin(axis=1) == np.arange(n)).all() and dist.diagonal().max() < 12  # JPEG rounding, chroma seams


@pytest.mark.parametrize("value", [0, -1, 31, 1.5, "3", True, None])
def test_bad_fps_is_one_line_naming_the_fix(value):
    with pytest.raises(BuildError) as e:
        check_options(["ogm-ge"], "ogm-ge", options=BuildOptions(ogm_ge_fps=value))
    assert "\n" not in str(e.value) and str(e.value).startswith(f"--ogm-ge-fps {value}: ")
    assert "1 to 30" in str(e.value) and "give e.g. --ogm-ge-fps 1" in str(e.value)


def test_fps_applies_to_ogm_ge_only(tmp_path):
    with pytest.raises(BuildError, match="^--ogm-ge-fps applies to --variant ogm-ge only: add --variant ogm-ge"):
        check_options(["2d-audio"], "ogm-ge", options=BuildOptions(ogm_ge_fps=3))
    check_options(["2d-audio", "ogm-ge"], "ogm-ge", options=BuildOptions(ogm_ge_fps=3))
    r = run_cli("build", "--variant", "ogm-ge", "--ogm-ge-fps", "2.5", "--out", str(tmp_path / "out"), timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --ogm-ge-fps 2.5: OGM-GE's --fps is a whole number of frames kept per second, 1 to 30 "
        "(CREMA-D's frame rate); give e.g. --ogm-ge-fps 1 (their default) or 3"]
    assert not (tmp_path / "out").exists()
    assert "--ogm-ge-fps" in run_cli("build", "--help", timeout=120).stdout
