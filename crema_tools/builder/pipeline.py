"""The build: plan, run, finalise; every requested variant written as WebDataset shards in one pass.

`plan_build` checks the arguments, finds the clips and fixes their order and splits; `run_build`
decodes each clip once (in worker processes), sends the middle frames through MTCNN in fixed-size
batches (on the GPU when there is one) and appends each variant's samples to its split's shards
under `<out>/.<variant>.partial/`; `finalise_build` writes the reports, moves each config into
place and renders the card. An interrupted build leaves the previous output untouched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .. import __version__
from ..corpus import MEDIA_DIRS, PROTOCOLS, Clip, ClipIdError, actors, assign_splits, official_clip_ids
from ..errors import CremaToolsError
from ..faces import detect_faces
from ..shards import ShardWriter
from ..synthetic import is_synthetic
from .card import write_card
from .extract import ClipFeatures, Step, bind_steps, extract
from .render import Renderer, get_renderers

FACE_BATCH = 16
"""Middle frames per MTCNN call. Fixed, so boxes never depend on the number of workers."""


class BuildError(CremaToolsError):
    """A problem with the build's arguments: reported as one line, nothing written."""


@dataclass
class VariantRun:
    variant: Renderer
    folder: Path
    writers: dict[str, ShardWriter] = field(default_factory=dict)
    counts: dict[str, Counter] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)


def discover_clips(raw: Path) -> tuple[list[str], list[dict]]:
    """Clip ids with at least one media file under `raw`, and the files whose names are not clip ids."""
    found: set[str] = set()
    strays: list[dict] = []
    for kind, (folder, ext) in MEDIA_DIRS.items():
        if kind == "audio_mp3" or not (raw / folder).is_dir():
            continue
        for path in (raw / folder).iterdir():
            if path.suffix != ext:
                continue
            try:
                Clip.parse(path.stem)
            except ClipIdError as e:
                strays.append({"clip_id": path.stem, "reason": f"{folder}/{path.name}: {e}"})
                continue
            found.add(path.stem)
    return sorted(found), strays


def check_same_provenance(out: Path, chosen: list[Renderer], protocol: str, seed: int, source: str,
                          fold: int | None = None) -> None:
    """One dataset card describes one protocol, seed, fold and source: refuse to mix configs in a folder."""
    rebuilt = {v.name for v in chosen}
    for path in sorted(out.glob("*/report.json")):
        if path.parent.name in rebuilt:
            continue
        other = json.loads(path.read_text())
        if (other.get("protocol"), other.get("seed"), other.get("fold"), other.get("source")) != (protocol, seed, fold, source):
            theirs = f"protocol {other.get('protocol')}" + (f" fold {other['fold']}" if other.get("fold") is not None else "")
            ours = f"protocol {protocol}" + (f" fold {fold}" if fold is not None else "")
            raise BuildError(
                f"--out {out}: already holds {path.parent.name} built with {theirs}, "
                f"seed {other.get('seed')} from {other.get('source')} media; use another --out for "
                f"{ours}, seed {seed} from {source} media")


def check_options(variants: Sequence[str], protocol: str, seed: int = 0, workers: int = 0,
                  fold: int | None = None) -> list[Renderer]:
    """The checks that need no files: run first, so a typo costs nothing."""
    chosen = get_renderers(list(variants))
    if protocol not in PROTOCOLS:
        raise BuildError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if seed < 0:
        raise BuildError(f"--seed {seed}: seeds are non-negative integers")
    for family in dict.fromkeys(r.family for r in chosen):
        assign_splits(protocol, seed, family, fold=fold)  # a missing or stray --fold is a SplitError
    cores = os.cpu_count() or 1
    if not 0 <= workers <= cores:
        raise BuildError(f"--workers {workers}: this machine has {cores} cores; use 0 to {cores}")
    return chosen


def check_folders(raw: Path, out: Path) -> None:
    if not raw.is_dir():
        raise BuildError(f"--raw {raw}: no such folder; point it at the folder holding VideoFlash/ and AudioWAV/")
    if not any((raw / d).is_dir() for d, _ in MEDIA_DIRS.values()):
        raise BuildError(f"--raw {raw}: holds neither VideoFlash/ nor AudioWAV/; point it at the CREMA-D folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".crema-tools-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BuildError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _extract_all(raw: Path, ids: list[str], steps: tuple[Step, ...], workers: int) -> Iterator[ClipFeatures]:
    if workers <= 0:
        for cid in ids:
            yield extract(raw, cid, steps)
        return
    import multiprocessing as mp

    # a bounded window of clips in flight, in order: decoded frames never pile up in memory
    # when the workers outrun face detection
    window = 4 * workers
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_worker_init) as pool:
        pending: deque = deque()
        for cid in ids:
            pending.append(pool.submit(extract, raw, cid, steps))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def sample_metadata(f: ClipFeatures, split: str, variant: Renderer, source: str) -> dict:
    """The sample's `json` member: `crema_tools.shards.SAMPLE_FIELDS`, then the variant's own fields."""
    clip = Clip.parse(f.clip_id)
    face = f.face if variant.uses_face else None
    return {
        "clip_id": f.clip_id,
        "actor_id": clip.actor_id,
        "actor_sex": actors()[clip.actor_id].sex,
        "sentence": clip.sentence,
        "emotion": clip.emotion,
        "intensity": clip.intensity,
        "label": clip.label,
        "split": split,
        "face_box": list(face.box) if face and face.box else None,
        "face_probability": face.probability if face else None,
        "face_found": face.found if face else None,
        "audio_source": f.audio_source if "mel" in variant.steps else None,
        "duration_s": round(f.video_duration or f.audio_duration or 0.0, 3),
        "source": source,
        "variant": variant.name,
        **(variant.metadata(f) if variant.metadata else {}),
    }


def _handle(run: VariantRun, f: ClipFeatures, split: str | None, source: str) -> None:
    v = run.variant
    if split is None:
        run.skipped.append({"clip_id": f.clip_id, "reason": f"not in this protocol's {v.family.upper()} split"})
        return
    failed = [f.errors[s] for s in v.steps if s in f.errors]
    if failed:
        run.skipped.append({"clip_id": f.clip_id, "reason": "; ".join(dict.fromkeys(failed))})
        return
    try:
        members = v.render(f)
    except Exception as e:  # one odd clip must not end the build
        run.skipped.append({"clip_id": f.clip_id, "reason": f"could not render: {e.__class__.__name__}: {e}"})
        return
    meta = sample_metadata(f, split, v, source)
    members["json"] = json.dumps(meta, sort_keys=True).encode()
    members["cls"] = str(meta["label"]).encode()
    if split not in run.writers:
        run.writers[split] = ShardWriter(run.folder, split)
        run.counts[split] = Counter()
    run.writers[split].write(f.clip_id, members)
    run.counts[split][meta["emotion"]] += 1
    if v.uses_face and not f.face.found:
        run.no_face.append(f.clip_id)


def _report(run: VariantRun, plan: "BuildPlan") -> dict:
    v, protocol = run.variant, plan.protocol
    params = json.loads(json.dumps(v.params))
    if "video" in params:
        params["video"]["face_crop"] = plan.face_crop
    return {
        "variant": v.name,
        "description": v.variant.description,
        "shape": v.variant.shape,
        "protocol": protocol,
        "protocol_description": PROTOCOLS[protocol].description,
        "seed": plan.seed,
        "fold": plan.fold,
        "source": plan.source,
        "crema_tools_version": __version__,
        "clips_found": plan.clips_found,
        "splits": {
            s: {"samples": run.writers[s].samples, "shards": run.writers[s].shards,
                "per_emotion": dict(sorted(run.counts[s].items()))}
            for s in PROTOCOLS[protocol].splits if s in run.writers
        },
        "samples": sum(w.samples for w in run.writers.values()),
        "skipped": sorted(run.skipped, key=lambda r: r["clip_id"]),
        "face_not_found": sorted(run.no_face),
        "params": params,
        "members": v.variant.members,
        "metadata_fields": v.variant.metadata_fields,
    }


@dataclass
class BuildPlan:
    """What a build will do, fixed before any clip is decoded."""

    raw: Path
    out: Path
    renderers: list[Renderer]
    protocol: str
    seed: int
    source: str  # "crema-d" or "synthetic"
    clip_ids: list[str]  # in processing order: seeded, so shards come out shuffled
    clips_found: int
    strays: list[dict]  # files that are not official clips, reported in every config
    splits: dict[str, dict[str, str]]  # family -> clip id -> split
    steps: tuple[Step, ...]
    fold: int | None = None
    face_crop: bool = False
    workers: int = 0
    device: str | None = None

    @property
    def need_faces(self) -> bool:
        return any(r.uses_face for r in self.renderers)


def plan_build(raw: str | Path, out: str | Path, variants: Sequence[str], protocol: str = "paper", seed: int = 0,
               workers: int = 0, device: str | None = None, clip_ids: Sequence[str] | None = None,
               face_crop: bool = False, fold: int | None = None) -> BuildPlan:
    """Check everything, find the clips, fix their order and splits; nothing is written but `out`."""
    raw, out = Path(raw), Path(out)
    chosen = check_options(variants, protocol, seed, workers, fold)
    check_folders(raw, out)
    source = "synthetic" if is_synthetic(raw) else "crema-d"
    check_same_provenance(out, chosen, protocol, seed, source, fold)
    found, strays = discover_clips(raw)
    official = set(official_clip_ids())
    strays += [{"clip_id": c, "reason": "not an official CREMA-D clip id"} for c in found if c not in official]
    ids = [c for c in found if c in official]
    if clip_ids is not None:
        wanted = set(clip_ids)
        ids = [c for c in ids if c in wanted]
    if not ids:
        raise BuildError(f"--raw {raw}: no CREMA-D clip (VideoFlash/<clip id>.flv or AudioWAV/<clip id>.wav) to build from")
    random.Random(seed).shuffle(ids)
    return BuildPlan(
        raw, out, chosen, protocol, seed, source, ids, len(found), strays,
        splits={fam: assign_splits(protocol, seed, fam, fold=fold) for fam in dict.fromkeys(r.family for r in chosen)},
        steps=bind_steps([s for r in chosen for s in r.steps], face_crop=face_crop),
        fold=fold, face_crop=face_crop, workers=workers, device=device,
    )


@contextmanager
def _main_process_threads(workers: int):
    """The decoding workers have their cores; OpenMP threads competing with them for the rest slow
    MTCNN down many times over, so the main process keeps to what is left while they run."""
    import torch

    threads = torch.get_num_threads()
    if workers > 0:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_build(plan: BuildPlan, progress: bool = True) -> list[VariantRun]:
    """Decode every clip once and write each variant's shards into its partial folder."""
    from tqdm.auto import tqdm

    runs = []
    for r in plan.renderers:
        partial = plan.out / f".{r.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        runs.append(VariantRun(r, partial, skipped=list(plan.strays)))
    try:
        with _main_process_threads(plan.workers), tqdm(
                total=len(plan.clip_ids), desc=f"building {', '.join(r.name for r in plan.renderers)}",
                unit="clip", disable=not progress, file=sys.stderr) as bar:
            clips = _extract_all(plan.raw, plan.clip_ids, plan.steps, plan.workers)
            for batch in _batched(clips, FACE_BATCH):
                if plan.need_faces:
                    with_frame = [f for f in batch if f.middle_frame is not None]
                    for f, face in zip(with_frame, detect_faces([f.middle_frame for f in with_frame], plan.device)):
                        f.face = face
                for f in batch:
                    for run in runs:
                        _handle(run, f, plan.splits[run.variant.family].get(f.clip_id), plan.source)
                    bar.update(1)
        for run in runs:
            for w in run.writers.values():
                w.close()
    except BaseException:
        discard(runs)
        raise
    return runs


def discard(runs: list[VariantRun]) -> None:
    for run in runs:
        for w in run.writers.values():
            w.close()
        shutil.rmtree(run.folder, ignore_errors=True)


def finalise_build(plan: BuildPlan, runs: list[VariantRun]) -> dict[str, dict]:
    """Write each config's report, move it into place, and render the dataset card."""
    reports = {}
    try:
        for run in runs:
            report = _report(run, plan)
            (run.folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            final = plan.out / run.variant.name
            shutil.rmtree(final, ignore_errors=True)
            os.replace(run.folder, final)
            reports[run.variant.name] = report
    finally:
        discard(runs)
    write_card(plan.out)
    return reports


def build(
    raw: str | Path,
    out: str | Path,
    variants: Sequence[str],
    protocol: str = "paper",
    seed: int = 0,
    workers: int = 0,
    device: str | None = None,
    progress: bool = True,
    clip_ids: Sequence[str] | None = None,
    face_crop: bool = False,
    fold: int | None = None,
) -> dict[str, dict]:
    """Build the variants from the corpus at `raw` into the dataset folder `out`; returns the reports."""
    plan = plan_build(raw, out, variants, protocol, seed, workers, device, clip_ids, face_crop, fold)
    return finalise_build(plan, run_build(plan, progress))
