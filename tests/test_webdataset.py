"""The webdataset library reads the shards: `crema_tools.loading.wds` decodes every config of the
registry to the tensors `crema_tools.load` yields, through the documented pipeline."""

import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
import webdataset as wds
from helpers import tar_members, write_tar

import crema_tools
from crema_tools.builder.pipeline import build
from crema_tools.loading import LoadError
from crema_tools.loading.wds import Decoder, pipeline, shard_urls
from crema_tools.representations import REPRESENTATIONS

FEW = ["1001_DFA_ANG_XX", "1001_DFA_NEU_XX", "1001_IEO_FEA_HI", "1002_DFA_ANG_XX", "1002_DFA_NEU_XX", "1002_IEO_FEA_HI"]


@pytest.fixture(scope="module")
def every_config(corpus, tmp_path_factory) -> Path:
    """Every config of the registry, built from six clips (a train and a test split each)."""
    out = tmp_path_factory.mktemp("every_config")
    build(corpus, out, list(REPRESENTATIONS), progress=False, clip_ids=FEW)
    return out


def splits(out: Path, variant: str) -> list[str]:
    return list(json.loads((out / variant / "report.json").read_text())["splits"])


def same(a, b) -> bool:
    """Equal items: tensors of one dtype and shape with equal values, the rest equal, nested alike."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


def without_key(item):
    """The item less the `__key__` webdataset's `map` stage adds to a dict."""
    return {k: v for k, v in item.items() if k != "__key__"} if isinstance(item, dict) else item


def clip_of(item) -> str:
    return item["clip_id"] if isinstance(item, dict) else None


@pytest.mark.parametrize("variant", list(REPRESENTATIONS))
def test_the_pipeline_yields_what_load_yields(every_config, variant):
    for split in splits(every_config, variant):
        urls = shard_urls(every_config, variant, split)
        assert urls and all(Path(u).is_file() for u in urls)
        torch.manual_seed(0)  # OGM-GE's train transform draws from torch's RNG: both readers get the same draws
        expected = list(crema_tools.load(every_config, variant, split))
        torch.manual_seed(0)
        got = list(pipeline(urls, variant, split))
        assert len(got) == len(expected) > 0
        for x, y in zip(expected, got):
            assert same(x, without_key(y)), (variant, split, clip_of(x))
            if isinstance(y, dict):
                assert y["__key__"] == y["clip_id"]


def test_options_reach_the_representation(every_config):
    urls = shard_urls(every_config, "3d-multimodal", "train")
    options = dict(dtype="uint8", sample_frames=4, multimodal_layout="squeezed")
    expected = list(crema_tools.load(every_config, "3d-multimodal", "train", **options))
    got = list(pipeline(urls, "3d-multimodal", "train", **options))
    assert got[0]["inputs"].shape == (4, 3, 224, 224) and got[0]["inputs"].dtype == torch.uint8
    assert all(same(x, without_key(y)) for x, y in zip(expected, got))
    with pytest.raises(LoadError, match="pad_to and sample_frames exclude each other"):
        pipeline(urls, "3d-multimodal", pad_to=135, sample_frames=16)


def test_shuffled_each_clip_once_repeatable_per_seed(every_config):
    urls = shard_urls(every_config, "2d-audio", "train") + shard_urls(every_config, "2d-audio", "test")
    plain = [x["clip_id"] for x in pipeline(urls, "2d-audio")]
    assert sorted(plain) == sorted(FEW)  # split None: each sample decoded for its own split
    dataset = pipeline(urls, "2d-audio", shuffle=True, seed=5, shuffle_buffer=3)
    epochs = [[x["clip_id"] for x in dataset] for _ in range(3)]
    assert all(sorted(e) == sorted(FEW) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1 and tuple(plain) not in {tuple(e) for e in epochs}
    again = pipeline(urls, "2d-audio", shuffle=True, seed=5, shuffle_buffer=3)
    assert [x["clip_id"] for x in again] == epochs[0]  # a function of (seed, epoch)


def test_shards_dealt_to_nodes_and_workers(every_config, monkeypatch):
    urls = shard_urls(every_config, "2d-audio", "train") + shard_urls(every_config, "2d-audio", "test")
    loader = wds.WebLoader(pipeline(urls, "2d-audio"), batch_size=2, num_workers=2, collate_fn=crema_tools.collate)
    assert Counter(c for batch in loader for c in batch["clip_id"]) == Counter(FEW)  # each clip once over the workers
    per_node = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        per_node.append([x["clip_id"] for x in pipeline(urls, "2d-audio")])
    assert Counter(per_node[0] + per_node[1]) == Counter(FEW) and all(per_node)  # one shard each


def test_decoder_errors_are_one_line(every_config, tmp_path):
    with pytest.raises(LoadError, match="unknown variant 'nope'"):
        Decoder("nope")
    with pytest.raises(LoadError, match="2d-audio: frames_per_clip apply to the ogm-ge config only"):
        Decoder("2d-audio", frames_per_clip=3)
    other = shard_urls(every_config, "3d-audio", "train")
    with pytest.raises(LoadError, match=r"a 3d-audio sample, and this decoder reads 2d-audio") as e:
        next(iter(pipeline(other, "2d-audio")))
    assert "\n" not in str(e.value) and other[0] in str(e.value)
    with pytest.raises(LoadError, match="no json member .png.; not a sample of a crema-tools build"):
        Decoder("2d-audio")({"__key__": "k", "__url__": "u", "png": b""})
    members = tar_members(Path(shard_urls(every_config, "2d-audio", "test")[0]))
    broken = tmp_path / "broken.tar"
    write_tar(broken, [(m, b"not a png" if m.name.endswith(".png") else data) for m, data in members])
    with pytest.raises(LoadError, match=r"broken.tar: sample 1002_IEO_FEA_HI: cannot decode \(.*\); rebuild this config") as e:
        next(iter(pipeline([str(broken)], "2d-audio")))
    assert "\n" not in str(e.value)
    assert tarfile.is_tarfile(broken)


def test_shard_urls_refuses_what_is_not_built(every_config):
    with pytest.raises(LoadError, match="no split 'validation'"):
        shard_urls(every_config, "2d-audio", "validation")
    with pytest.raises(LoadError, match="no shard URLs given"):
        pipeline([], "2d-audio")
