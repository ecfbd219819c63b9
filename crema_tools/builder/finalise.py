"""Reports and the card: the units' status files merged into each config's report.json, the
config moved into place in one rename, the dataset card rendered."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

from .. import __version__
from ..corpus import Clip, get_protocol
from ..errors import BuildError
from ..format.report import REPORT_NAME, Report, actor_overlap
from ..representations import Representation
from .atomic import atomic_write, fsync_dir
from .card import write_card
from .outdir import CARD_NAME, config_files
from .partial import CONFIG_DIR, partial_dir, status_path
from .plan import FACE_BATCH, BuildPlan, build_versions


def load_statuses(plan: BuildPlan, r: Representation) -> list[dict]:
    statuses = []
    for u in range(len(plan.units)):
        try:
            statuses.append(json.loads(status_path(plan, r, u).read_text()))
        except (OSError, ValueError):
            raise BuildError(f"{r.name}: work unit {u} was not built (no {status_path(plan, r, u)}); "
                             f"run the same command again to build what is missing") from None
    return statuses


def _report(plan: BuildPlan, r: Representation, statuses: list[dict]) -> Report:
    params = r.report_params(plan.build_options)
    shards: dict[str, list[dict]] = {}
    per_emotion: dict[str, Counter] = {}
    skipped = list(plan.strays) + list(plan.left_out)
    for status in statuses:
        for shard in status["shards"]:
            shards.setdefault(shard["split"], []).append(shard)
        for s in status["samples"]:
            if s["status"] == "ok":
                per_emotion.setdefault(s["split"], Counter())[s["emotion"]] += 1
            else:
                skipped.append({"clip_id": s["clip_id"], "reason": s["reason"]})
    splits = {
        s: {"samples": sum(sh["samples"] for sh in shards[s]),
            "shards": [sh["name"] for sh in shards[s]],
            "shard_info": [{k: sh[k] for k in ("name", "samples", "sha256", "bytes", "clip_ids")} for sh in shards[s]],
            "per_emotion": dict(sorted(per_emotion[s].items()))}
        for s in get_protocol(plan.protocol).splits if s in shards
    }
    actors = {split: [Clip.parse(c).actor_id for sh in shards[split] for c in sh["clip_ids"]] for split in splits}
    return Report({
        "variant": r.name,
        "description": r.description,
        "shape": r.shape,
        "protocol": plan.protocol,
        "protocol_description": get_protocol(plan.protocol).description,
        "seed": plan.seed,
        "fold": plan.fold,
        "split_file": plan.split_file.record() if plan.split_file is not None else None,
        "actors": actor_overlap(actors),
        "source": plan.source,
        "crema_tools_version": __version__,
        "clips_found": plan.clips_found,
        "splits": splits,
        "samples": sum(s["samples"] for s in splits.values()),
        "skipped": sorted(skipped, key=lambda x: x["clip_id"]),
        "flagged": sorted((f for st in statuses for f in st.get("flagged", [])), key=lambda x: (x["clip_id"], x["flag"])),
        "face_not_found": sorted(c for st in statuses for c in st["face_not_found"]),
        "params": params,
        "members": r.members,
        "metadata_fields": r.metadata_fields,
        "build": {"unit_clips": plan.unit_clips, "units": len(plan.units), "face_batch": FACE_BATCH,
                  "face_device": plan.face_device if plan.finds_faces(r) else None,
                  **({"options": plan.options_for(r)} if plan.options_for(r) else {}),
                  "shard_naming": "<split>-<unit>.tar: unit u holds clips [u * unit_clips, (u + 1) * unit_clips) "
                                  "of the seeded clip order"},
        "versions": build_versions(),
    })


def skip_summary(skipped: list[dict], n: int = 2) -> str:
    """'24 skipped: 20 VideoFlash/<clip>.flv: file is missing; 4 ...': the commonest reasons, clip ids masked."""
    groups = Counter(str(s["reason"]).replace(str(s["clip_id"]), "<clip>") for s in skipped)
    shown = "; ".join(f"{k} x {reason if len(reason) <= 90 else reason[:87] + '...'}" for reason, k in groups.most_common(n))
    more = f"; {len(groups) - n} other reasons" if len(groups) > n else ""
    return f"{len(skipped)} skipped ({shown}{more})" if skipped else "no clip to build"


def write_card_atomically(out: Path) -> None:
    """`card.write_card`, but the new README.md replaces the old one in one rename: it renders in a
    scratch folder of the same name holding copies of the configs' report.json files."""
    scratch = out / f".card.tmp-{os.getpid()}"
    view = scratch / out.resolve().name
    try:
        for report in sorted(out.glob("*/report.json")):
            if config_files(report.parent) is None:
                continue  # not a config crema-tools wrote
            (view / report.parent.name).mkdir(parents=True)
            shutil.copyfile(report, view / report.parent.name / "report.json")
        write_card(view)
        if (view / CARD_NAME).is_file():
            with open(view / CARD_NAME, "rb") as f:
                os.fsync(f.fileno())
            os.replace(view / CARD_NAME, out / CARD_NAME)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def finalise_build(plan: BuildPlan) -> dict[str, dict]:
    """Merge each variant's unit statuses into its report.json, move the config into place, and
    render the card. A config that would hold no sample is not written: the previous one stays,
    and a BuildError summarises why every clip was skipped."""
    reports, empty = {}, {}
    for r in plan.representations:
        partial = partial_dir(plan.out, r.name)
        report = _report(plan, r, load_statuses(plan, r))
        if report["samples"] == 0:
            empty[r.name] = report
            shutil.rmtree(partial)
            continue
        config = partial / CONFIG_DIR
        atomic_write(config / REPORT_NAME, report.to_json())
        final = plan.out / r.name
        if final.exists() or final.is_symlink():
            os.replace(final, partial / "replaced")  # the old config leaves in one rename...
        os.replace(config, final)  # ...and the new one arrives in another
        fsync_dir(plan.out)
        shutil.rmtree(partial)
        reports[r.name] = report
    if reports:
        write_card_atomically(plan.out)
    if empty:
        why = "; ".join(f"{name}: {skip_summary(rep['skipped'])}, "
                        + ("the previous config is kept" if (plan.out / name / "report.json").is_file() else "nothing written")
                        for name, rep in empty.items())
        written = f" ({', '.join(reports)} written)" if reports else ""
        raise BuildError(f"no sample to write for {', '.join(empty)}{written}: {why}")
    return reports
