"""`crema_tools.load` as a training stream: shuffling, the split by rank and worker, uint8, collate, options."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import run_python, tar_members, write_tar

import crema_tools
from crema_tools.builder.pipeline import build
from crema_tools.errors import LoadError
from crema_tools.loading.dataset import collate
from crema_tools.loading.transforms import to_model_input

FEW_3D = ["1001_DFA_ANG_XX", "1002_DFA_SAD_XX", "1001_IEO_HAP_XX", "1002_IEO_NEU_XX"]


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("loading")
    build(corpus, out, ["2d-audio"], progress=False)
    build(corpus, out, ["3d-audio"], progress=False, clip_ids=FEW_3D)
    return out


def ids(dataset) -> list[str]:
    return [x["clip_id"] for x in dataset]


def test_options_that_do_not_apply_are_refused(built):
    with pytest.raises(LoadError, match="2d-audio: pad_to apply to 3D configs only"):
        crema_tools.load(built, "2d-audio", "train", pad_to=135)
    with pytest.raises(LoadError, match="2d-audio: sample_frames apply to 3D configs only"):
        crema_tools.load(built, "2d-audio", "train", sample_frames=16)
    with pytest.raises(LoadError, match="3d-audio: multimodal_layout applies to 3d-multimodal only"):
        crema_tools.load(built, "3d-audio", "train", multimodal_layout="squeezed")
    with pytest.raises(LoadError, match="pad_to and sample_frames exclude each other"):
        crema_tools.load(built, "3d-audio", "train", pad_to=135, sample_frames=16)
    with pytest.raises(LoadError, match="dtype must be one of float32, uint8"):
        crema_tools.load(built, "2d-audio", "train", dtype="float16")
    with pytest.raises(LoadError, match="unknown variant '4d-audio'"):
        crema_tools.load(built, "4d-audio", "train")


def test_padding_and_sampling_are_explicit(built):
    """A 54-frame clip padded to 60 keeps its 54 frames then blanks; sampled to 60 it repeats frames."""
    own = {x["clip_id"]: x for x in crema_tools.load(built, "3d-audio", "train")}
    short = min(own.values(), key=lambda x: x["length"])
    t = short["length"]
    padded = {x["clip_id"]: x for x in crema_tools.load(built, "3d-audio", "train", pad_to=t + 6)}[short["clip_id"]]
    assert padded["inputs"].shape[0] == t + 6 and padded["length"] == t and not padded["mask"][t:].any()
    assert torch.equal(padded["inputs"][:t], short["inputs"]) and padded["inputs"][t:].abs().max() == 0
    sampled = {x["clip_id"]: x for x in crema_tools.load(built, "3d-audio", "train", sample_frames=t + 6)}[short["clip_id"]]
    assert sampled["inputs"].shape[0] == t + 6 and sampled["mask"].all()  # every frame real, some twice


def test_reshuffles_per_epoch_and_repeats_per_seed(built):
    plain = ids(crema_tools.load(built, "2d-audio", "train"))
    ds = crema_tools.load(built, "2d-audio", "train", shuffle=True, seed=3, shuffle_buffer=8)
    ds.set_epoch(0)
    epoch0 = ids(ds)
    ds.set_epoch(1)
    epoch1 = ids(ds)
    again = crema_tools.load(built, "2d-audio", "train", shuffle=True, seed=3, shuffle_buffer=8)
    again.set_epoch(1)
    assert sorted(epoch0) == sorted(epoch1) == sorted(plain)  # every clip once per epoch
    assert epoch0 != epoch1 and epoch0 != plain  # epochs differ
    assert ids(again) == epoch1  # a function of (seed, epoch)


@pytest.mark.parametrize("workers", [0, 2])
def test_every_clip_once_over_ranks_and_workers_each_decoded_by_its_owner(built, workers):
    everything = ids(crema_tools.load(built, "2d-audio", "train"))
    seen = []
    for rank in range(2):
        ds = crema_tools.load(built, "2d-audio", "train", rank=rank, world_size=2)
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate)
        mine = [c for b in loader for c in b["clip_id"]]
        assert len(mine) == len(ds)
        if workers == 0:
            assert ds.decoded == len(mine)  # nothing decoded for the other rank
        seen += mine
    assert Counter(seen) == Counter(everything)


def test_even_gives_every_rank_the_same_count(built):
    total = len(crema_tools.load(built, "2d-audio", "train"))
    counts = []
    for rank in range(3):
        ds = crema_tools.load(built, "2d-audio", "train", rank=rank, world_size=3, even=True, shuffle=True)
        counts.append(len(ids(ds)))
        assert counts[-1] == len(ds) == total // 3
    assert len(set(counts)) == 1


def test_uint8_on_the_device_matches_float32_within_3_grey_levels(built):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for variant in ("2d-audio", "3d-audio"):
        f32 = next(iter(crema_tools.load(built, variant, "train")))["inputs"]
        u8 = next(iter(crema_tools.load(built, variant, "train", dtype="uint8")))["inputs"]
        assert u8.dtype == torch.uint8 and u8.shape == f32.shape
        a, b = to_model_input(f32[None], mean, std), to_model_input(u8[None], mean, std)
        grey_levels = ((a - b).abs() * torch.tensor(std).view(1, 1, -1, 1, 1)[..., : a.shape[-3], :, :]
                       if a.ndim == 5 else (a - b).abs() * torch.tensor(std).view(1, -1, 1, 1)) * 255
        assert float(grey_levels.max()) <= 3.0


def test_collate_pads_clips_of_their_own_lengths(built):
    items = [x for split in ("train", "test") for x in crema_tools.load(built, "3d-audio", split)]
    lengths = [x["length"] for x in items]
    assert len(set(lengths)) > 1  # the clips really differ
    batch = collate(items)
    assert batch["inputs"].shape[:2] == (len(items), max(lengths))
    assert batch["mask"].sum(1).tolist() == lengths
    for i, x in enumerate(items):
        assert torch.equal(batch["inputs"][i, : x["length"]], x["inputs"])


def test_corrupt_members_and_truncated_shards_are_named(built, tmp_path):
    shutil.copytree(built / "2d-audio", tmp_path / "2d-audio")
    shard = sorted((tmp_path / "2d-audio").glob("train-*.tar"))[0]
    members = tar_members(shard)
    first_png = next(m for m, _ in members if m.name.endswith(".png"))
    write_tar(shard, [(m, data[:40] if m is first_png else data) for m, data in members])  # a PNG cut short
    key = first_png.name.split(".")[0]
    with pytest.raises(LoadError, match=f"{shard.name}: sample {key}: cannot decode"):
        list(crema_tools.load(tmp_path, "2d-audio", "train"))
    blob = (built / "2d-audio" / shard.name).read_bytes()
    shard.write_bytes(blob[: len(blob) // 2 + 100])
    with pytest.raises(LoadError, match=f"{shard}: unreadable shard"):
        list(crema_tools.load(tmp_path, "2d-audio", "train"))


def test_a_shard_holding_fewer_samples_than_its_report_is_named(built, tmp_path):
    """A shard cut on a member boundary still reads as a tar: the counts in report.json catch it."""
    shutil.copytree(built / "2d-audio", tmp_path / "2d-audio")
    shard = sorted((tmp_path / "2d-audio").glob("train-*.tar"))[0]
    members = tar_members(shard)
    last_key = members[-1][0].name.split(".")[0]
    write_tar(shard, [(m, data) for m, data in members if not m.name.startswith(last_key + ".")])
    with pytest.raises(LoadError, match=f"{shard}: holds .* samples, report.json says"):
        list(crema_tools.load(tmp_path, "2d-audio", "train"))


def test_streaming_from_a_url_gives_the_same_samples(built):
    """`streaming=True` reads shards as streams (no seeking) from an fsspec URL: same samples, same tensors."""
    local = {x["clip_id"]: x["inputs"] for x in crema_tools.load(built, "2d-audio", "train")}
    streamed = crema_tools.load(built.as_uri(), "2d-audio", "train", streaming=True, rank=1, world_size=2)
    other = crema_tools.load(built, "2d-audio", "train", streaming=True, rank=0, world_size=2)
    got = {x["clip_id"]: x["inputs"] for x in streamed} | {x["clip_id"]: x["inputs"] for x in other}
    assert set(got) == set(local) and all(torch.equal(got[k], local[k]) for k in local)
    with pytest.raises(LoadError, match="report.json: cannot be read"):
        crema_tools.load(built.as_uri(), "3d-vision", "train", streaming=True)


def test_verify_checks_every_shard_against_its_recorded_sha256(built, tmp_path):
    assert len(crema_tools.load(built, "2d-audio", "train", verify=True)) > 0
    shutil.copytree(built / "2d-audio", tmp_path / "2d-audio")
    shard = sorted((tmp_path / "2d-audio").glob("train-*.tar"))[0]
    blob = bytearray(shard.read_bytes())
    blob[700] ^= 0xFF  # one byte inside the first member's data: still a readable tar
    shard.write_bytes(bytes(blob))
    with pytest.raises(LoadError, match=f"{shard}: sha256 .* differs from report.json's"):
        crema_tools.load(tmp_path, "2d-audio", "train", verify=True)


@pytest.mark.parametrize("holds_the_loader", [False, True])
def test_a_partly_read_dataset_leaves_nothing_on_stderr_at_exit(built, holds_the_loader):
    """The generators still suspended at exit are closed after the modules' globals are cleared; an
    `except tarfile.TarError` evaluated then printed "Exception ignored in: <generator ...>" and an
    AttributeError. A script that imports the loader's module keeps it alive to that last clean-up
    (here the traceback came every time), and a buffer smaller than the split leaves the reader mid-shard."""
    code = "\n".join(["import crema_tools", *(["from crema_tools.loading import dataset"] if holds_the_loader else []),
                      f"it = iter(crema_tools.load({str(built)!r}, '2d-audio', 'train', shuffle=True, shuffle_buffer=2))",
                      "x = next(it)"])
    done = run_python("-c", code, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
