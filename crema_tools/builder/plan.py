"""Checks and the plan: everything a build will do, fixed before any clip is decoded.

The checks that need no files run first (`check_options`), so a typo costs nothing; `plan_build`
finds the clips, fixes their order (a seeded shuffle), their splits and the extraction steps of
the representations being built."""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from ..corpus import (
    MEDIA_DIRS,
    Clip,
    ClipIdError,
    SplitFile,
    assign_splits,
    check_fold,
    left_out_reason,
    official_clip_ids,
    read_split_file,
    resolve_protocol,
)
from ..errors import BuildError, CremaToolsError
from ..format.report import REPORT_NAME, Report, ReportError
from ..media.faces import default_device
from ..representations import BuildOptions, Representation, Step, get_representations
from ..representations.steps import union
from ..synthetic import is_synthetic
from . import note
from .outdir import check_ownership

FACE_BATCH = 16
"""Middle frames per MTCNN call, taken in order within a work unit. Fixed, so boxes never depend
on the number of workers or processes."""
FACE_TRACK_BATCHED_ON = ("cuda",)
"""Device kinds on which --face-crop's keyframes go to MTCNN between two passes over the video,
16 clips (80 frames) per call in the main process (and hicmae-av's frames, one clip's per call).
On a CPU each worker runs MTCNN on its own clip's five keyframes in one pass instead: MTCNN costs
about the same per frame in any batch there, and the second pass decodes the video again, so the
batched build measured 1.10x (bench/results/build-cpu.md). The boxes are the same either way (tested)."""
UNIT_CLIPS = 256
"""Clips per work unit: the step a killed build resumes from and the share parallel processes
take; each unit writes one shard per split and variant (about 180 train samples in the paper's
splits, 20 to 30 MB)."""


def discover_clips(raw: Path) -> tuple[list[str], list[dict]]:
    """Clip ids with at least one media file under `raw`, and the files whose names are not clip ids."""
    found: set[str] = set()
    strays: list[dict] = []
    for kind, (folder, ext) in MEDIA_DIRS.items():
        if kind == "audio_mp3" or not (raw / folder).is_dir():
            continue
        try:
            paths = list((raw / folder).iterdir())
        except OSError as e:
            raise BuildError(f"--raw {raw}: cannot read {folder}/ ({e.strerror or e}); "
                             f"check its permissions, or point --raw at a readable copy") from None
        for path in paths:
            if path.suffix != ext:
                continue
            try:
                Clip.parse(path.stem)
            except ClipIdError as e:
                strays.append({"clip_id": path.stem, "reason": f"{folder}/{path.name}: {e}"})
                continue
            found.add(path.stem)
    return sorted(found), strays


def check_same_provenance(out: Path, chosen: list[Representation], protocol: str, seed: int, source: str,
                          fold: int | None = None, split_file: SplitFile | None = None) -> None:
    """One dataset card describes one protocol, seed, fold, split file and source: refuse to mix configs in a folder."""
    ours_file = split_file.sha256 if split_file is not None else None
    rebuilt = {v.name for v in chosen}
    for path in sorted(out.glob(f"*/{REPORT_NAME}")):
        if path.parent.name in rebuilt:
            continue
        try:
            other = Report.load(path)
        except ReportError:
            continue
        if not other.written_by_crema_tools:
            continue  # not a config crema-tools wrote
        if other.provenance != {"protocol": protocol, "seed": seed, "fold": fold, "source": source, "split_file": ours_file}:
            theirs = f"protocol {other.get('protocol')}" + (f" fold {other['fold']}" if other.get("fold") is not None else "")
            ours = f"protocol {protocol}" + (f" fold {fold}" if fold is not None else "")
            if other.provenance["split_file"] is not None:
                theirs += f" (split file {other['split_file'].get('name')}, sha256 {other.provenance['split_file'][:12]}...)"
            if split_file is not None:
                ours += f" (split file {split_file.name}, sha256 {split_file.sha256[:12]}...)"
            raise BuildError(
                f"--out {out}: already holds {path.parent.name} built with {theirs}, "
                f"seed {other.get('seed')} from {other.get('source')} media; use another --out for "
                f"{ours}, seed {seed} from {source} media")


def load_split_file(split_file: SplitFile | str | Path | Sequence[str | Path] | None) -> SplitFile | None:
    """The split file given (paths, or one already read), read and checked whole: nothing is built from half a file."""
    if split_file is None or isinstance(split_file, SplitFile):
        return split_file
    return read_split_file(split_file)


def check_options(variants: Sequence[str], protocol: str | None, seed: int = 0, workers: int = 0,
                  fold: int | None = None, unit_clips: int = UNIT_CLIPS,
                  split_file: SplitFile | str | Path | Sequence[str | Path] | None = None,
                  options: BuildOptions = BuildOptions()) -> list[Representation]:
    """The checks that need no media: run first, so a typo costs nothing. The split file, if any, is read
    and checked here, line by line (`load_split_file`); `protocol` None is `paper`, or `split-file` with one.
    `options`: the representations' own build options, each checked by the representation it applies to."""
    chosen = get_representations(list(variants))
    names = [r.name for r in chosen]
    for flag, (_, applies_to) in options.given().items():
        if applies_to not in names:
            raise BuildError(f"{flag} applies to --variant {applies_to} only: add --variant {applies_to}, or leave {flag} out")
    for r in chosen:
        r.check_build_options(options)
    try:
        protocol = resolve_protocol(protocol, split_file)
    except CremaToolsError as e:
        raise BuildError(str(e)) from None
    if seed < 0:
        raise BuildError(f"--seed {seed}: seeds are non-negative integers")
    check_fold(protocol, fold)  # a missing or stray --fold is a SplitError
    if split_file is None:
        for family in dict.fromkeys(r.split_family for r in chosen):
            assign_splits(protocol, seed, family, fold=fold)
    cores = os.cpu_count() or 1
    if not 0 <= workers <= cores:
        raise BuildError(f"--workers {workers}: this machine has {cores} cores; use 0 to {cores}")
    if unit_clips < 1:
        raise BuildError(f"--unit-size {unit_clips}: a work unit holds at least 1 clip")
    load_split_file(split_file)  # last: the one check that reads a file
    return chosen


def check_folders(raw: Path, out: Path) -> None:
    """`raw` looks like CREMA-D and `out` exists (whether it can be written to, the lock finds out)."""
    if not raw.is_dir():
        raise BuildError(f"--raw {raw}: no such folder; point it at the folder holding VideoFlash/ and AudioWAV/")
    if not any((raw / d).is_dir() for d, _ in MEDIA_DIRS.values()):
        raise BuildError(f"--raw {raw}: holds neither VideoFlash/ nor AudioWAV/; point it at the CREMA-D folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"--out {out}: cannot write there ({e.strerror or e})") from None


@lru_cache(maxsize=1)
def build_versions() -> dict[str, str]:
    """The versions the shards' bytes depend on (decoders, encoders, resampling, MTCNN, PNG)."""
    import platform
    import re
    import zlib
    from importlib.metadata import PackageNotFoundError, version

    import av
    import PIL
    import torch
    import torchaudio

    from ..media import video3d

    blob = video3d.encode_frames([np.zeros((video3d.SIZE * 3 // 2, video3d.SIZE), np.uint8)])
    x264 = re.search(rb"x264 - core (\d+)( r\d+)?", blob)
    try:
        facenet = version("facenet-pytorch")
    except PackageNotFoundError:  # pragma: no cover - a source checkout of it
        facenet = "unknown"
    return {
        "crema-tools": __version__, "python": platform.python_version(), "av": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "unknown")),
        "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "libavformat": ".".join(map(str, av.library_versions.get("libavformat", ()))),
        "x264": ("core " + (x264.group(1) + (x264.group(2) or b"")).decode()) if x264 else "unknown",
        "torch": torch.__version__, "torchaudio": torchaudio.__version__, "facenet-pytorch": facenet,
        "numpy": np.__version__, "pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


@dataclass
class BuildPlan:
    """What a build will do, fixed before any clip is decoded."""

    raw: Path
    out: Path
    representations: list[Representation]
    protocol: str
    seed: int
    source: str  # "crema-d" or "synthetic"
    clip_ids: list[str]  # in processing order: seeded, so shards come out shuffled
    clips_found: int
    strays: list[dict]  # files that are not official clips, reported in every config
    splits: dict[str, dict[str, str]]  # family -> clip id -> split
    steps: tuple[Step, ...]
    fold: int | None = None
    split_file: SplitFile | None = None
    left_out: list[dict] = field(default_factory=list)  # clips found that the protocol leaves out, not decoded
    face_crop: bool = False
    workers: int = 0
    device: str | None = None
    unit_clips: int = UNIT_CLIPS
    force: bool = False
    ogm_ge_fps: int = 1

    @property
    def build_options(self) -> BuildOptions:
        return BuildOptions(face_crop=self.face_crop, batch_faces=self.face_kind in FACE_TRACK_BATCHED_ON,
                            ogm_ge_fps=self.ogm_ge_fps)

    @property
    def face_kind(self) -> str:
        """The kind of device (cpu, cuda) MTCNN would run on."""
        return (self.device or default_device()).split(":")[0]

    @property
    def need_faces(self) -> bool:
        return any(self.finds_faces(r) for r in self.representations)

    def finds_faces(self, r: Representation) -> bool:
        """Whether MTCNN decides `r`'s bytes (the 2D face crop, the 3D --face-crop track)."""
        return r.finds_faces(self.build_options)

    @property
    def units(self) -> list[list[str]]:
        n = self.unit_clips
        return [self.clip_ids[i:i + n] for i in range(0, len(self.clip_ids), n)]

    @property
    def face_device(self) -> str | None:
        """The kind of device MTCNN runs on (cpu or cuda): its boxes, so the crops, depend on it."""
        if not self.need_faces:
            return None
        return self.face_kind

    def fingerprint(self, r: Representation) -> dict:
        """Everything a variant's bytes depend on besides the media: an unfinished build made
        with a different fingerprint is discarded, never resumed."""
        return {
            "variant": r.name, "protocol": self.protocol, "seed": self.seed, "fold": self.fold,
            "source": self.source, "face_crop": self.face_crop, "unit_clips": self.unit_clips,
            "face_batch": FACE_BATCH, "face_device": self.face_device if self.finds_faces(r) else None,
            "steps": list(r.needs), "params": json.loads(json.dumps(r.params)),
            "clips": len(self.clip_ids),
            "clips_sha256": hashlib.sha256("\n".join(self.clip_ids).encode()).hexdigest(),
            "versions": build_versions(),
            **({"split_file": self.split_file.sha256} if self.split_file is not None else {}),
            **({"options": self.options_for(r)} if self.options_for(r) else {}),
        }

    def options_for(self, r: Representation) -> dict:
        """`r`'s own build options set away from their defaults, by flag (`--ogm-ge-fps`: 3)."""
        return {flag: value for flag, (value, applies_to) in self.build_options.given().items() if applies_to == r.name}


def plan_build(raw: str | Path, out: str | Path, variants: Sequence[str], protocol: str | None = None, seed: int = 0,
               workers: int = 0, device: str | None = None, clip_ids: Sequence[str] | None = None,
               face_crop: bool = False, fold: int | None = None, *, unit_clips: int = UNIT_CLIPS,
               force: bool = False, check_out: bool = True,
               split_file: SplitFile | str | Path | Sequence[str | Path] | None = None, ogm_ge_fps: int = 1) -> BuildPlan:
    """Check everything, find the clips, fix their order and splits; nothing is written but `out`.

    `check_out` (done once, under the build's lock) refuses to replace what crema-tools did not
    write (unless `force`) and to mix protocols in one folder. `protocol` None is `paper`, or
    `split-file` when `split_file` (paths of a lab's split files, or a `SplitFile`) is given.
    `ogm_ge_fps`: the frames per second the ogm-ge config keeps (OGM-GE's `--fps`).
    """
    raw, out = Path(raw), Path(out)
    split_file = load_split_file(split_file)
    chosen = check_options(variants, protocol, seed, workers, fold, unit_clips, split_file,
                           BuildOptions(ogm_ge_fps=ogm_ge_fps))
    protocol = resolve_protocol(protocol, split_file)
    check_folders(raw, out)
    source = "synthetic" if is_synthetic(raw) else "crema-d"
    if check_out:
        replaced = check_ownership(out, [r.name for r in chosen], force)
        if replaced:
            note(f"--force: replacing what crema-tools did not write in {out}: " + "; ".join(replaced[:5])
                 + (f"; and {len(replaced) - 5} more" if len(replaced) > 5 else ""))
        check_same_provenance(out, chosen, protocol, seed, source, fold, split_file)
    found, strays = discover_clips(raw)
    official = set(official_clip_ids())
    strays += [{"clip_id": c, "reason": "not an official CREMA-D clip id"} for c in found if c not in official]
    ids = [c for c in found if c in official]
    if clip_ids is not None:
        wanted = set(clip_ids)
        ids = [c for c in ids if c in wanted]
    if not ids:
        raise BuildError(f"--raw {raw}: no CREMA-D clip (VideoFlash/<clip id>.flv or AudioWAV/<clip id>.wav) to build from")
    splits = {fam: assign_splits(protocol, seed, fam, fold=fold, split_file=split_file)
              for fam in dict.fromkeys(r.split_family for r in chosen)}
    ids, left_out = leave_out(ids, protocol, split_file, splits)
    if not ids:
        raise BuildError(f"--raw {raw}: none of the {len(left_out)} clips found is in a split of protocol {protocol} "
                         f"(e.g. {left_out[0]['clip_id']}: {left_out[0]['reason']})")
    random.Random(seed).shuffle(ids)
    plan = BuildPlan(
        raw, out, chosen, protocol, seed, source, ids, len(found), strays, splits=splits, steps=(),
        fold=fold, split_file=split_file, left_out=left_out,
        face_crop=face_crop, workers=workers, device=device, unit_clips=unit_clips, force=force, ogm_ge_fps=ogm_ge_fps,
    )
    plan.steps = union(r.steps(plan.build_options) for r in chosen)
    return plan


def leave_out(ids: list[str], protocol: str, split_file: SplitFile | None,
              splits: dict[str, dict[str, str]]) -> tuple[list[str], list[dict]]:
    """The clips to decode, and those the protocol leaves out of every split with the reason, reported as skipped.

    Only protocols with a `left_out` reason (hicmae, split-file) leave clips out here; the others'
    builds decode every clip and skip those outside a family's split one by one, as they always did
    (so their work units, and their shards, stay as they were).
    """
    reason = left_out_reason(protocol, split_file)
    if reason is None:
        return ids, []
    kept, dropped = [], []
    for clip_id in ids:
        why = reason(clip_id) if not any(clip_id in split for split in splits.values()) else None
        if why is None:
            kept.append(clip_id)
        else:
            dropped.append({"clip_id": clip_id, "reason": why})
    return kept, dropped
