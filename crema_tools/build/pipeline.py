"""The build: one pass over the clips, every requested variant written as WebDataset shards.

Clips are processed in a seeded shuffled order (so shards are already shuffled), decoded in worker
processes, their middle frames sent through MTCNN in fixed-size batches in the main process
(on the GPU when there is one), and each variant's samples appended to its split's shards.
Everything is written under `<out>/.<variant>.partial/` and moved into place at the end, so an
interrupted build leaves the previous output untouched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .. import __version__
from ..corpus import MEDIA_DIRS, PROTOCOLS, Clip, ClipIdError, actors, assign_splits, official_clip_ids
from ..faces import detect_faces
from ..synthetic import is_synthetic
from .card import write_card
from .extract import ClipFeatures, extract
from .shards import ShardWriter
from .variants import Variant, get_variants

FACE_BATCH = 16
"""Middle frames per MTCNN call. Fixed, so boxes never depend on the number of workers."""


class BuildError(Exception):
    """A problem with the build's arguments: reported as one line, nothing written."""


@dataclass
class VariantRun:
    variant: Variant
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


def check_same_provenance(out: Path, chosen: list[Variant], protocol: str, seed: int, source: str) -> None:
    """One dataset card describes one protocol, seed and source: refuse to mix configs in a folder."""
    rebuilt = {v.name for v in chosen}
    for path in sorted(out.glob("*/report.json")):
        if path.parent.name in rebuilt:
            continue
        other = json.loads(path.read_text())
        if (other.get("protocol"), other.get("seed"), other.get("source")) != (protocol, seed, source):
            raise BuildError(
                f"--out {out}: already holds {path.parent.name} built with protocol {other.get('protocol')}, "
                f"seed {other.get('seed')} from {other.get('source')} media; use another --out for "
                f"protocol {protocol}, seed {seed} from {source} media")


def check_arguments(raw: Path, out: Path, variants: Sequence[str], protocol: str) -> list[Variant]:
    chosen = get_variants(list(variants))
    if protocol not in PROTOCOLS:
        raise BuildError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
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
    return chosen


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _extract_all(raw: Path, ids: list[str], steps: tuple[str, ...], workers: int, options: dict) -> Iterator[ClipFeatures]:
    if workers <= 0:
        for cid in ids:
            yield extract(raw, cid, steps, options)
        return
    import multiprocessing as mp

    # a bounded window of clips in flight, in order: decoded frames never pile up in memory
    # when the workers outrun face detection
    window = 4 * workers
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_worker_init) as pool:
        pending: deque = deque()
        for cid in ids:
            pending.append(pool.submit(extract, raw, cid, steps, options))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def sample_metadata(f: ClipFeatures, split: str, variant: Variant, source: str) -> dict:
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


def _report(run: VariantRun, protocol: str, seed: int, source: str, raw_clips: int, face_crop: bool) -> dict:
    v = run.variant
    params = json.loads(json.dumps(v.params))
    if "video" in params:
        params["video"]["face_crop"] = face_crop
    return {
        "variant": v.name,
        "description": v.description,
        "shape": v.shape,
        "protocol": protocol,
        "protocol_description": PROTOCOLS[protocol].description,
        "seed": seed,
        "source": source,
        "crema_tools_version": __version__,
        "clips_found": raw_clips,
        "splits": {
            s: {"samples": run.writers[s].samples, "shards": run.writers[s].shards,
                "per_emotion": dict(sorted(run.counts[s].items()))}
            for s in PROTOCOLS[protocol].splits if s in run.writers
        },
        "samples": sum(w.samples for w in run.writers.values()),
        "skipped": sorted(run.skipped, key=lambda r: r["clip_id"]),
        "face_not_found": sorted(run.no_face),
        "params": params,
        "members": v.members,
        "metadata_fields": v.metadata_fields,
    }


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
) -> dict[str, dict]:
    """Build the variants from the corpus at `raw` into the dataset folder `out`; returns the reports."""
    raw, out = Path(raw), Path(out)
    chosen = check_arguments(raw, out, variants, protocol)
    source = "synthetic" if is_synthetic(raw) else "crema-d"
    check_same_provenance(out, chosen, protocol, seed, source)
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

    runs = []
    for v in chosen:
        partial = out / f".{v.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        runs.append(VariantRun(v, partial, skipped=list(strays)))
    splits = {fam: assign_splits(protocol, seed, fam) for fam in {v.family for v in chosen}}
    steps = tuple(dict.fromkeys(s for v in chosen for s in v.steps))
    need_faces = any(v.uses_face for v in chosen)

    import torch
    from tqdm.auto import tqdm

    # the decoding workers have their cores; OpenMP threads competing with them for the rest
    # slow MTCNN down many times over, so the main process keeps to what is left
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers) if workers > 0 else threads)
    try:
        with tqdm(total=len(ids), desc=f"building {', '.join(v.name for v in chosen)}", unit="clip",
                  disable=not progress, file=sys.stderr) as bar:
            for batch in _batched(_extract_all(raw, ids, steps, workers, {"face_crop": face_crop}), FACE_BATCH):
                if need_faces:
                    with_frame = [f for f in batch if f.middle_frame is not None]
                    for f, face in zip(with_frame, detect_faces([f.middle_frame for f in with_frame], device)):
                        f.face = face
                for f in batch:
                    for run in runs:
                        _handle(run, f, splits[run.variant.family].get(f.clip_id), source)
                    bar.update(1)
        reports = {}
        for run in runs:
            for w in run.writers.values():
                w.close()
            report = _report(run, protocol, seed, source, len(found), face_crop)
            (run.folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            final = out / run.variant.name
            shutil.rmtree(final, ignore_errors=True)
            os.replace(run.folder, final)
            reports[run.variant.name] = report
    finally:
        torch.set_num_threads(threads)
        for run in runs:
            for w in run.writers.values():
                w.close()
            shutil.rmtree(run.folder, ignore_errors=True)
    write_card(out)
    return reports
