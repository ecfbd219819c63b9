"""--split-file: the formats labs ship, read and checked line by line; compared with the labs' own files."""

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest

from crema_tools.corpus import EMOTIONS, SplitFileError, assign_splits, official_clip_ids, read_split_file, resolve_protocol
from crema_tools.corpus.splits import SplitError


def _shipped(name: str) -> bytes:
    return resources.files("crema_tools.corpus").joinpath("data", name).read_bytes()


def _ogm_ge_rows(name: str) -> list[str]:
    """The clip ids of a shipped OGM-GE file, read from its bytes (BOM, CRLF) independently of the package."""
    blob = _shipped(name)
    blob = blob[3:] if blob.startswith(b"\xef\xbb\xbf") else blob
    return [line.split(",")[0] for line in blob.decode("ascii").split("\r\n") if line]


def _hicmae_rows(k: int, part: str) -> list[tuple[str, int]]:
    """(clip id, label index) of a shipped HiCMAE fold file: `clip_id label` lines."""
    return [(cid, int(label)) for cid, label in (line.split(" ") for line in _shipped(f"hicmae_split0{k}_{part}.txt").decode().splitlines())]


# ---------------------------------------------------------------- the labs' files


def test_ogm_ge_csv_as_published_gives_their_split(tmp_path):
    folder = tmp_path / "ogm-ge"
    folder.mkdir()
    for part in ("train", "test"):
        (folder / f"{part}.csv").write_bytes(_shipped(f"ogm_ge_{part}.csv"))  # BOM-less CRLF, as shipped
    (folder / "LICENSE").write_bytes(_shipped("ogm_ge_LICENSE.txt"))  # not a split file: not read
    expected = {cid: "train" for cid in _ogm_ge_rows("ogm_ge_train.csv")} | {cid: "test" for cid in _ogm_ge_rows("ogm_ge_test.csv")}
    assert len(expected) == 7442
    by_folder = read_split_file(folder)
    by_files = read_split_file([folder / "train.csv", folder / "test.csv"])
    assert by_folder.assignment == by_files.assignment == expected
    assert by_folder.splits == {"train": 6698, "test": 744} and by_folder.format == "clip-label-csv"
    assert [f.name for f in by_folder.files] == ["test.csv", "train.csv"]
    # several files: the sha256 of what `sha256sum test.csv train.csv` prints; one file: its own sha256
    listing = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in ("test.csv", "train.csv"))
    assert by_folder.sha256 == by_files.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert by_folder.name == "ogm-ge" and by_files.name == "train.csv, test.csv" and by_files.given == ("train.csv", "test.csv")
    alone = read_split_file(folder / "test.csv")
    assert alone.sha256 == hashlib.sha256((folder / "test.csv").read_bytes()).hexdigest() and alone.splits == {"test": 744}
    assert alone.left_out_reason("1001_DFA_ANG_XX") in (None, "not in the split file test.csv")


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_hicmae_files_in_their_path_path_label_form_give_their_fold(tmp_path, k):
    """HiCMAE's split0K/train.csv and test.csv hold `<frames folder> <wav> <label>` lines, space-separated."""
    folder = tmp_path / f"split0{k}"
    folder.mkdir()
    for part in ("train", "test"):
        lines = [f"/data/crema-d/frames/{cid} /data/crema-d/AudioWAV/{cid}.wav {label}\n" for cid, label in _hicmae_rows(k, part)]
        (folder / f"{part}.csv").write_text("".join(lines))
    split = read_split_file(folder)
    expected = {cid: part for part in ("train", "test") for cid, _ in _hicmae_rows(k, part)}
    assert split.assignment == expected and split.format == "hicmae"
    assert split.assignment == assign_splits("hicmae", 0, "2d", fold=k)  # the protocol's rule agrees with their file
    reduced = read_split_file([resources.files("crema_tools.corpus").joinpath("data", f"hicmae_split0{k}_{p}.txt") for p in ("train", "test")])
    assert reduced.assignment == expected  # the reduced `clip_id label` form reads the same


def _emobox_line(cid: str) -> str:
    actor, sentence, emotion, intensity = cid.split("_")
    return json.dumps({"key": f"cremad-{actor}-{sentence}-{emotion}-{intensity}", "dataset": "cremad",
                       "wav": f"{{data_root}}/cremad/AudioWAV/{cid}.wav", "type": "raw", "sample_rate": 16000,
                       "length": 2.5, "task": "category", "emo": emotion, "channel": 1}) + "\n"


def test_emobox_jsonl_folder_gives_the_split_it_lists(tmp_path):
    ids = list(official_clip_ids())
    train, test = ids[:300:3], ids[1:300:3]
    folder = tmp_path / "fold_1"
    folder.mkdir()
    (folder / "cremad_train_fold_1.jsonl").write_text("".join(_emobox_line(c) for c in train))
    (folder / "cremad_test_fold_1.jsonl").write_text("".join(_emobox_line(c) for c in test))
    split = read_split_file(folder)
    assert split.assignment == {c: "train" for c in train} | {c: "test" for c in test}
    assert split.format == "emobox-jsonl" and split.splits == {"train": 100, "test": 100}
    assert split.left_out_reason(ids[2]) == "not in the split file fold_1" and split.left_out_reason(train[0]) is None


@pytest.mark.parametrize("text", [
    "clip_id,split\n1001_DFA_ANG_XX,train\n1001_DFA_DIS_XX,valid\n1001_DFA_FEA_XX,test\n",
    "1001_DFA_ANG_XX,train\n1001_DFA_DIS_XX,validation\n\n1001_DFA_FEA_XX,Test\n",
    '"1001_DFA_ANG_XX","train"\r\n1001_DFA_DIS_XX,dev\r\n1001_DFA_FEA_XX,test\r\n',
])
def test_a_clip_split_csv_is_one_file_for_every_split(tmp_path, text):
    path = tmp_path / "my_split.csv"  # the name does not matter: the split column says
    path.write_text(text)
    split = read_split_file(path)
    assert split.assignment == {"1001_DFA_ANG_XX": "train", "1001_DFA_DIS_XX": "validation", "1001_DFA_FEA_XX": "test"}
    assert split.format == "clip-split-csv"


def test_a_bom_and_crlf_are_read_as_if_absent(tmp_path):
    plain = tmp_path / "plain" / "train.csv"
    odd = tmp_path / "odd" / "train.csv"
    plain.parent.mkdir()
    odd.parent.mkdir()
    plain.write_bytes(b"1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS\n")
    odd.write_bytes(b"\xef\xbb\xbf1001_DFA_ANG_XX,ANG\r\n1001_DFA_DIS_XX,DIS")
    a, b = read_split_file(plain), read_split_file(odd)
    assert a.assignment == b.assignment == {"1001_DFA_ANG_XX": "train", "1001_DFA_DIS_XX": "train"}
    assert a.sha256 != b.sha256  # the bytes differ, and the record says so
    header = tmp_path / "h" / "test.csv"
    header.parent.mkdir()
    header.write_text("clip_id,label\nAudioWAV/1001_DFA_ANG_XX.wav,ang\n")  # a header, a path, a lower-case code
    assert read_split_file(header).assignment == {"1001_DFA_ANG_XX": "test"}


# ---------------------------------------------------------------- bad files: one line, file and line named


BAD = [
    ("train.csv", "1001_DFA_ANG_XX,ANG\n1001_XXX_ANG_XX,ANG\n", r"train.csv:2: '1001_XXX_ANG_XX' is not one of the 7,442 official"),
    ("train.csv", "1001_DFA_ANG_XX,ANG\n1008_WSI_ANG_XX,ANG\n", r"train.csv:2: '1008_WSI_ANG_XX' is not one of"),  # never recorded
    ("train.csv", "1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS,extra\n", r"train.csv:2: cannot read this line as OGM-GE / PMR CSV.*3 comma"),
    ("train.csv", "1001_DFA_ANG_XX,ANG\n1001_DFA_ANG_XX,ANG\n", r"train.csv:2: 1001_DFA_ANG_XX is listed twice \(also in this file, line 1\)"),
    ("train.csv", "1001_DFA_ANG_XX,SAD\n", r"train.csv:1: 1001_DFA_ANG_XX is labelled SAD here but its id says ANG"),
    ("train.csv", "1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,test\n", r"train.csv:2: .*'test' is not an emotion code"),
    ("train.csv", "", r"train.csv: empty"),
    ("train.csv", "\r\n\n", r"train.csv: empty"),
    ("split.csv", "clip_id,split\n", r"split.csv: holds a header and no clip"),
    ("train.txt", "1001_DFA_ANG_XX\n", r"train.txt:1: not a split file crema-tools reads"),
    ("train.csv", "1001_DFA_ANG_XX,happy\n", r"train.csv:1: not a split file crema-tools reads: the second column 'happy'"),
    ("split.csv", "1001_DFA_ANG_XX,train\n1001_DFA_DIS_XX,holdout\n", r"split.csv:2: .*'holdout' is not a split"),
    ("everything.csv", "1001_DFA_ANG_XX,ANG\n", r"everything.csv: its name names no split"),
    ("train_test.csv", "1001_DFA_ANG_XX,ANG\n", r"train_test.csv: its name names several splits"),
    ("test.txt", "a/1001_DFA_ANG_XX b/1001_DFA_DIS_XX.wav 0\n", r"test.txt:1: .*the paths name different clips"),
    ("test.txt", "1001_DFA_ANG_XX 1\n", r"test.txt:1: 1001_DFA_ANG_XX is labelled DIS here but its id says ANG"),
    ("test.txt", "1001_DFA_ANG_XX 0\n1001_DFA_DIS_XX 9\n", r"test.txt:2: .*the label 9 is not an index 0..5"),
    ("test.jsonl", _emobox_line("1001_DFA_ANG_XX") + "[1, 2]\n", r"test.jsonl:2: .*not a JSON object"),
    ("test.jsonl", '{"key": "cremad-1001-DFA-ANG-XX", "wav": "x/1001_DFA_DIS_XX.wav"}\n', r"test.jsonl:1: .*name different clips"),
    ("test.jsonl", '{"key": "cremad-1001-DFA-ANG-XX"\n', r"test.jsonl:1: .*not JSON"),
    ("test.jsonl", '{"emo": "ANG"}\n', r"test.jsonl:1: .*neither \"wav\" nor \"key\""),
]


@pytest.mark.parametrize("name, text, message", BAD, ids=[m[:40] for _, _, m in BAD])
def test_a_bad_split_file_is_one_line_naming_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SplitFileError, match=message) as e:
        read_split_file(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS\xff\n")
    with pytest.raises(SplitFileError, match=r"train.csv:2: not UTF-8 text"):
        read_split_file(path)


def test_a_clip_in_two_splits_names_both_files(tmp_path):
    (tmp_path / "train.csv").write_text("1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS\n")
    (tmp_path / "test.csv").write_text("1001_DFA_FEA_XX,FEA\n1001_DFA_ANG_XX,ANG\n")
    with pytest.raises(SplitFileError, match=r"test.csv:2: 1001_DFA_ANG_XX is in test here but in train in .*train.csv, line 1: "
                                             r"a clip belongs in one split"):
        read_split_file([tmp_path / "train.csv", tmp_path / "test.csv"])
    other = tmp_path / "again"
    other.mkdir()
    (other / "train.csv").write_text("1001_DFA_FEA_XX,FEA\n")
    with pytest.raises(SplitFileError, match=r"two files are named train.csv"):
        read_split_file([tmp_path / "train.csv", other / "train.csv"])


def test_missing_paths_and_empty_folders_are_one_line(tmp_path):
    with pytest.raises(SplitFileError, match=r"--split-file .*nowhere: no such file or folder"):
        read_split_file(tmp_path / "nowhere")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("# not a split\n")
    with pytest.raises(SplitFileError, match=r"--split-file .*docs: the folder holds no split file"):
        read_split_file(tmp_path / "docs")


def test_the_split_file_protocol_goes_with_a_file_only(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("1001_DFA_ANG_XX,ANG\n")
    split = read_split_file(path)
    assert resolve_protocol(None) == "paper" and resolve_protocol(None, split) == "split-file"
    assert resolve_protocol("split-file", split) == "split-file"
    with pytest.raises(SplitError, match="--split-file gives the split itself: leave --protocol ogm-ge out"):
        resolve_protocol("ogm-ge", split)
    with pytest.raises(SplitError, match="protocol 'split-file' needs a split file: pass --split-file PATH"):
        resolve_protocol("split-file")
    with pytest.raises(SplitError, match="needs a split file"):
        assign_splits("split-file")
    assert assign_splits("split-file", 4, "3d", split_file=split) == {"1001_DFA_ANG_XX": "train"}
    with pytest.raises(SplitError, match="protocol 'split-file' has no folds"):
        assign_splits("split-file", fold=1, split_file=split)


def test_labels_of_the_shipped_hicmae_files_agree_with_the_clip_ids():
    for k in range(1, 6):
        for part in ("train", "test"):
            assert all(EMOTIONS[label] == cid.split("_")[2] for cid, label in _hicmae_rows(k, part))


def test_hicmae_files_are_shipped_with_their_license():
    data = resources.files("crema_tools.corpus").joinpath("data")
    license_text = data.joinpath("hicmae_LICENSE.txt").read_text()
    assert license_text.startswith("MIT License") and "Licai Sun" in license_text
    assert license_text.strip() in data.joinpath("README.md").read_text()
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert "crema_tools/corpus/data/hicmae_LICENSE.txt" in pyproject
