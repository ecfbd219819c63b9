"""One work unit: its clips extracted, their faces found in batches, every representation's
samples rendered and checked, then its shards and status file committed.

A unit's bytes depend only on the plan and the unit, never on which process made it or when."""

from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path
from typing import Sequence

from ..format.sample import SampleMetadata
from ..format.shards import ShardFile
from ..representations import Features, Representation
from ..representations.base import NonFiniteArray
from ..representations.steps import find_faces
from .atomic import atomic_write, fsync_dir
from .partial import CONFIG_DIR, media_digest, partial_dir, shard_name, status_path
from .plan import FACE_BATCH, BuildPlan
from .workers import Extraction, batched, main_process_threads


class UnitWriter:
    """One variant's share of one work unit: its shards (one per split) and its status file."""

    def __init__(self, plan: BuildPlan, r: Representation, unit: int, inputs: str):
        self.plan, self.r, self.unit, self.inputs = plan, r, unit, inputs
        self.config = partial_dir(plan.out, r.name) / CONFIG_DIR
        self.shards: dict[str, ShardFile] = {}
        self.samples: list[dict] = []
        self.flagged: list[dict] = []
        self.no_face: list[str] = []
        self.current: Path | None = None  # the file being written, named by a disk-full error

    def skip(self, clip_id: str, reason: str) -> None:
        self.samples.append({"clip_id": clip_id, "status": "skipped", "reason": reason})

    def handle(self, f: Features, split: str | None) -> None:
        v = self.r
        if split is None:
            return self.skip(f.clip_id, f"not in this protocol's {v.split_family.upper()} split")
        failed = [f.errors[s] for s in v.needs if s in f.errors]
        if failed:
            return self.skip(f.clip_id, "; ".join(dict.fromkeys(failed)))
        bad = v.unusable(f)
        if bad:
            return self.skip(f.clip_id, bad)
        try:
            members = v.render(f)
            meta = SampleMetadata.of(f, split, v, self.plan.source)
            members["json"] = meta.to_json()
        except NonFiniteArray as e:  # the last guard: nothing stored holds NaN or inf
            return self.skip(f.clip_id, str(e))
        except Exception as e:  # one odd clip must not end the build
            return self.skip(f.clip_id, f"could not render: {e.__class__.__name__}: {e}")
        members["cls"] = str(meta.label).encode()
        if split not in self.shards:
            self.current = self.config / shard_name(split, self.unit)
            self.shards[split] = ShardFile(self.current)
        self.current = self.shards[split].path
        self.shards[split].write(f.clip_id, members)
        self.samples.append({"clip_id": f.clip_id, "status": "ok", "split": split, "shard": shard_name(split, self.unit),
                             "emotion": meta.emotion})
        self.flagged += v.flags(f)
        if v.face_not_found(f):
            self.no_face.append(f.clip_id)

    def commit(self) -> None:
        """Shards to their final names, then the status file: the unit counts as done only once both are there."""
        records = []
        for split in sorted(self.shards):
            self.current = self.shards[split].tmp
            records.append({"split": split, **self.shards[split].commit(), "clip_ids": self.shards[split].keys})
        fsync_dir(self.config)
        status = {"unit": self.unit, "inputs": self.inputs, "clips": self.plan.units[self.unit], "samples": self.samples,
                  "shards": records, "flagged": self.flagged, "face_not_found": self.no_face}
        path = status_path(self.plan, self.r, self.unit)
        self.current = path
        atomic_write(path, (json.dumps(status, sort_keys=True) + "\n").encode())
        fsync_dir(path.parent)

    def abort(self) -> None:
        for shard in self.shards.values():
            shard.abort()


def build_unit(plan: BuildPlan, unit: int, clips: Extraction, todo: list[Representation]) -> None:
    writers = [UnitWriter(plan, r, unit, media_digest(plan.raw, plan.units[unit])) for r in todo]
    try:
        for batch in batched(islice(clips.first_pass, len(plan.units[unit])), FACE_BATCH):
            find_faces(batch, plan.device, middle_frames=any(r.uses_face for r in todo))
            for f in clips.finish(batch):
                for w in writers:
                    w.handle(f, plan.splits[w.r.split_family].get(f.clip_id))
        for w in writers:
            w.commit()
    except OSError as e:
        for w in writers:
            w.abort()
        if not e.filename:
            e.filename = str(next((w.current for w in writers if w.current), plan.out))
        raise
    except BaseException:
        for w in writers:
            w.abort()
        raise


def run_build(plan: BuildPlan, progress: bool = True, units: Sequence[int] | None = None,
              processes_here: int = 1, label: str = "") -> None:
    """Build the given work units (default: all) of every variant that has no status file for them."""
    from tqdm.auto import tqdm

    units = list(range(len(plan.units)) if units is None else units)
    todo = {u: [r for r in plan.representations if not status_path(plan, r, u).exists()] for u in units}
    units = [u for u in units if todo[u]]
    ids = [cid for u in units for cid in plan.units[u]]
    with main_process_threads(plan.workers, processes_here), tqdm(
            total=len(ids), desc=label or f"building {', '.join(r.name for r in plan.representations)}",
            unit="clip", disable=not progress, file=sys.stderr) as bar, \
            Extraction(plan.raw, ids, plan.steps, plan.workers) as clips:
        for u in units:
            build_unit(plan, u, clips, todo[u])
            bar.update(len(plan.units[u]))
