"""The dataset card (README.md) of a built folder, rendered from the reports of its variants.

The YAML header makes the folder load exactly as the Hub repository would: one `configs:` entry
per built variant with its splits' shard patterns, and `dataset_info` features that name the
labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

import yaml

from .. import __version__
from ..cards import card_template
from ..corpus import EMOTIONS
from ..shards import SAMPLE_FIELDS

SYNTHETIC_BANNER = (
    "> **Synthetic sample.** These shards were built from the synthetic corpus that ships with\n"
    "> crema-tools (real clip ids and formats, made-up faces and voices), not from CREMA-D media.\n"
    "> Use it to try the tools; numbers measured on it say nothing about emotion recognition."
)

TASKS = {"audio": "audio-classification", "vision": "image-classification", "multimodal": "video-classification"}


def _features(report: dict) -> list[dict]:
    members = report.get("members", {"png": "image"})
    extra = report.get("metadata_fields", {})
    struct = [{"name": k, **({"dtype": v} if isinstance(v, str) else v)} for k, v in {**SAMPLE_FIELDS, **extra}.items()]
    feats = [{"name": k, "dtype": v} for k, v in members.items()]
    feats.append({"name": "cls", "dtype": {"class_label": {"names": {str(i): e for i, e in enumerate(EMOTIONS)}}}})
    feats.append({"name": "json", "struct": struct})
    return feats


def render_card(reports: list[dict], repo: str = "crema-tools/crema-d") -> str:
    reports = sorted(reports, key=lambda r: r["variant"])
    first = reports[0]
    header = {
        "license": "odbl",
        "pretty_name": "CREMA-D (crema-tools)",
        "task_categories": sorted({TASKS[r["variant"].split("-", 1)[1]] for r in reports}),
        "tags": ["emotion-recognition", "crema-d", "audio-visual", "webdataset"],
        "configs": [
            {"config_name": r["variant"],
             "data_files": [{"split": s, "path": f"{r['variant']}/{s}-*.tar"} for s in r["splits"]]}
            for r in reports
        ],
        "dataset_info": [{"config_name": r["variant"], "features": _features(r)} for r in reports],
    }
    rows = "\n".join(
        f"| `{r['variant']}` | {r['description']} | {r['shape']} | "
        + ", ".join(f"{s} {v['samples']}" for s, v in r["splits"].items())
        + f" | {len(r['skipped'])} |"
        for r in reports
    )
    template = Template(card_template("dataset_card.md"))
    body = template.substitute(
        source_banner=SYNTHETIC_BANNER if first["source"] == "synthetic" else "",
        version=__version__,
        config_rows=rows,
        repo=repo,
        first_config=first["variant"],
        protocol=first["protocol"],
        seed=first["seed"],
        protocol_description=first["protocol_description"],
        source="synthetic sample made by crema-tools" if first["source"] == "synthetic" else "the official CREMA-D release",
        build_args=" ".join(f"--variant {r['variant']}" for r in reports) + f" --protocol {first['protocol']} --seed {first['seed']}",
    )
    meta = {"source": first["source"], "protocol": first["protocol"], "seed": first["seed"]}
    return "---\n" + yaml.safe_dump({**header, "crema_tools": meta}, sort_keys=False) + "---\n\n" + body


def write_card(out: Path) -> None:
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*/report.json"))]
    if reports:
        (out / "README.md").write_text(render_card(reports))
