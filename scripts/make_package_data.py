"""Regenerate crema_tools/corpus/data/ from the CREMA-D metadata folder.

The package ships the official metadata so that builds, splits and checks work offline and
agree everywhere. Run from the repository root:

    python scripts/make_package_data.py ../shared/crema-d

The output is deterministic (gzip without timestamps), so a rerun on the same input leaves
git clean.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "crema_tools" / "corpus" / "data"
# The OGM-GE release's CREMA-D split (MIT license), copied byte for byte: CRLF line endings kept.
OGM_GE = {"ogm-ge/train.csv": "ogm_ge_train.csv", "ogm-ge/test.csv": "ogm_ge_test.csv",
          "ogm-ge/LICENSE": "ogm_ge_LICENSE.txt"}
# HiCMAE's 5 speaker-independent folds (MIT license), reduced to `clip_id label` lines, copied byte
# for byte: the hicmae protocol is tested against them clip for clip.
HICMAE = {f"hicmae/split0{k}_{part}.txt": f"hicmae_split0{k}_{part}.txt" for k in range(1, 6) for part in ("train", "test")}
HICMAE["hicmae/LICENSE"] = "hicmae_LICENSE.txt"
LETTERS = "ADFHNS"
MODALITIES = {"1": "voice", "2": "face", "3": "multimodal"}


def _write_gz(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())


def _votes(src: Path) -> str:
    """Condense tabulatedVotes.csv to one row per clip: vote counts per modality and letter."""
    rows: dict[str, dict[str, str]] = {}
    with open(src / "official/processedResults/tabulatedVotes.csv", newline="") as f:
        for rec in csv.DictReader(f):
            modality = MODALITIES[rec[""][0]]
            row = rows.setdefault(rec["fileName"], {"clip_id": rec["fileName"]})
            for letter in LETTERS:
                row[f"{modality}_{letter}"] = rec[letter]
    columns = ["clip_id"] + [f"{m}_{letter}" for m in MODALITIES.values() for letter in LETTERS]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    for clip_id in sorted(rows):
        writer.writerow(rows[clip_id])
    return out.getvalue()


def main(src: str) -> None:
    root = Path(src)
    OUT.mkdir(parents=True, exist_ok=True)
    _write_gz(OUT / "manifest.csv.gz", (root / "manifest.csv").read_text())
    _write_gz(OUT / "votes.csv.gz", _votes(root))
    shutil.copyfile(root / "known_issues.csv", OUT / "known_issues.csv")
    shutil.copyfile(root / "official/VideoDemographics.csv", OUT / "VideoDemographics.csv")
    shutil.copyfile(root / "official/LICENSE.txt", OUT / "LICENSE.txt")
    splits = json.loads((root / "audeering/speaker_splits.json").read_text())
    (OUT / "audeering_speaker_splits.json").write_text(json.dumps(splits, indent=1) + "\n")
    for source, target in {**OGM_GE, **HICMAE}.items():
        shutil.copyfile(root / source, OUT / target)
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT.relative_to(Path.cwd())}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/crema-d")
