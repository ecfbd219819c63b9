"""The dataset card (README.md) of a built folder, rendered from the reports of its configs.

The YAML header holds only fields the Hub's card spec documents, and makes the folder load exactly
as the Hub repository would: one `configs:` entry per built config with its splits' shard patterns
(the headline one marked `default: true`, which the Hub's viewer opens first and `load_dataset`
loads when given no config), and `dataset_info` features that name the labels.

The build's record (crema-tools version, provenance and the number of samples of every split),
which `crema-tools push` checks against the reports and the shards, is in the card's text: a YAML
block in its last section, "Build record", that people read too (`card_record` reads it back;
cards of earlier versions kept it in the header, under the same `crema_tools:` key, and are still
read). The card is rendered with huggingface_hub's `DatasetCard` from `cards/dataset_card.md`; its
snippets name `repo_id`, a placeholder until `crema-tools push` renders it again with the
repository it uploads to.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import __version__
from ..cards import card_template
from ..corpus import EMOTIONS
from ..corpus.split_files import FORMATS
from ..format.report import Report, actors_text
from ..format.sample import SAMPLE_FIELDS
from ..representations import REPRESENTATIONS
from ..tables import markdown_table

PRETTY_NAME = "CREMA-D (crema-tools)"
PLACEHOLDER_ORG = "<your-org>"

SYNTHETIC_BANNER = (
    "> **Synthetic sample.** These shards were built from the synthetic corpus that ships with\n"
    "> crema-tools (real clip ids and formats, made-up faces and voices), not from CREMA-D media.\n"
    "> Use it to try the tools; numbers measured on it say nothing about emotion recognition."
)

SPLIT_ORDER = ("train", "validation", "test")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))

RECORD_KEY = "crema_tools"
"""The key of the build's record, in the card's text (and in the YAML header of earlier cards)."""
_RECORD_BLOCK = re.compile(r"^```yaml\n(" + RECORD_KEY + r":\n.*?)^```", re.MULTILINE | re.DOTALL)


def placeholder_repo_id(folder: str | Path) -> str:
    """`<your-org>/<folder name>`: what the card's snippets say until the folder is pushed."""
    return f"{PLACEHOLDER_ORG}/{Path(folder).resolve().name}"


def size_category(samples: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if samples < limit), "n>1M")


def _tasks(report: dict) -> tuple[set[str], set[str]]:
    """Hub task categories and task ids of one config, as its representation declares them."""
    rep = REPRESENTATIONS.get(report["variant"])
    return rep.card_tasks if rep is not None else (set(), set())


def _storing(reports: list[dict], what: str) -> str:
    """The configs whose representation stores `what` ("video", "mel"), as the card names them."""
    return ", ".join(f"`{r['variant']}`" for r in reports
                     if what in getattr(REPRESENTATIONS.get(r["variant"]), "stores", ()))


def _features(report: dict) -> list[dict]:
    members = report.get("members", {"png": "image"})
    extra = report.get("metadata_fields", {})
    struct = [{"name": k, **({"dtype": v} if isinstance(v, str) else v)} for k, v in {**SAMPLE_FIELDS, **extra}.items()]
    feats = [{"name": k, "dtype": v} for k, v in members.items()]
    feats.append({"name": "cls", "dtype": {"class_label": {"names": {str(i): e for i, e in enumerate(EMOTIONS)}}}})
    feats.append({"name": "json", "struct": struct})
    return feats


def _resizing(report: dict) -> list[str]:
    """How each part of a config's images is resized, from its report's params (kernel, antialiasing):
    a different resize moves pixels enough to matter (0.8 dB median in the 2d-audio image)."""
    lines = []
    for part, params in report.get("params", {}).items():
        for key, when in (("resize", ""), ("squeezed_resize", ", squeezed layout")):
            r = params.get(key) if isinstance(params, dict) else None
            if not isinstance(r, dict):
                continue
            how = [r.get("by") or r.get("scaler"), r.get("kernel") or r.get("interpolation")]
            if "antialias" in r:
                how.append("antialiased" if r["antialias"] else "no antialiasing")
            at = f" at {r['at'].split(' ')[0]}" if r.get("at") else " at build"
            lines.append(f"`{report['variant']}` {part}{when}{at}: " + ", ".join(str(h) for h in how if h))
    return lines


def _protocol_text(report: dict) -> str:
    fold = report.get("fold")
    return f"`{report['protocol']}`" + (f" fold {fold}" if fold is not None else "") + f" with seed {report['seed']}"


def _split_file_text(report: dict) -> str:
    """The split file of a split-file build: name, sha256, format and clips per split ("" for other protocols)."""
    sf = Report(report).split_file
    if sf is None:
        return ""
    clips = sf.get("clips") or {}
    counts = ", ".join(f"{split} {clips[split]:,}" for split in sorted(clips, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 3, s)))
    formats = " + ".join(FORMATS.get(f, f) for f in str(sf.get("format")).split("+"))
    files = sf.get("files") or []
    listed = ("; its files: " + ", ".join(f"`{f.get('name')}` (sha256 `{f.get('sha256')}`)" for f in files)) if len(files) > 1 else ""
    return (f"`{sf.get('name')}`, sha256 `{sf.get('sha256')}`, {formats}: {counts} clips{listed}. "
            f"Clips it does not list are left out, each listed in `<config>/report.json` as skipped")


def _actors_lines(reports: list[dict]) -> str:
    texts = {r["variant"]: actors_text(r.get("actors")) for r in reports}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values())) + "."
    return "; ".join(f"`{name}`: {text}" for name, text in texts.items()) + "."


def _headline(report: dict) -> tuple[bool, bool]:
    """(one of the paper's multimodal representations, and of its clips), from the representation's facts."""
    rep = REPRESENTATIONS.get(report["variant"])
    paper_multimodal = rep is not None and rep.paper and rep.modality == "multimodal"
    return paper_multimodal, paper_multimodal and rep.layout == "clip"


def _example_config(reports: list[dict]) -> dict:
    """The config the snippets load and the card's default: the paper's 3D, else 2D, multimodal one, else the first.

    A newcomer should meet the paper's subject first: face and voice together, over the whole clip
    when it was built (its 3D experiments), not whichever config sorts first (`2d-audio`).
    """
    return max(reports, key=_headline)


def _default_reason(report: dict) -> str:
    multimodal, clip = _headline(report)
    if clip:
        return "the reference paper's headline input, the face and the voice together over the whole clip"
    if multimodal:
        return "the reference paper's multimodal input, the face and the voice together"
    return "the first of the configs built"


def build_record(reports: list[dict]) -> dict:
    """The build's record the card carries: crema-tools version, provenance, samples per config and split."""
    first = reports[0]
    return {"version": __version__, "source": first["source"], "protocol": first["protocol"], "seed": first["seed"],
            "fold": first.get("fold"), "split_file": Report(first).split_file_sha256,
            "samples": {r["variant"]: {s: v["samples"] for s, v in r["splits"].items()} for r in reports}}


def record_section(record: dict) -> str:
    """The card's last section: the build's record as a YAML block, written by the code (not the template)
    so that every card carries it whatever its text."""
    import yaml

    return ("## Build record\n\nThe provenance above and the samples of every split, as `crema-tools push` checks "
            "them against the reports and the shards:\n\n```yaml\n"
            + yaml.safe_dump({RECORD_KEY: record}, sort_keys=False) + "```\n")


def card_record(text: str) -> dict | None:
    """The build's record in a card's text (the YAML block of "Build record"), or in the YAML header of
    a card written before it moved there; None when the card holds none (not written by crema-tools)."""
    import yaml

    found = _RECORD_BLOCK.search(text)
    try:
        if found:
            record = yaml.safe_load(found.group(1)).get(RECORD_KEY)
        elif text.startswith("---\n"):
            record = (yaml.safe_load(text.split("---", 2)[1]) or {}).get(RECORD_KEY)
        else:
            return None
    except (yaml.YAMLError, AttributeError, IndexError):
        return None
    return record if isinstance(record, dict) else None


def dataset_card(reports: list[dict], repo_id: str | None = None):
    """The `huggingface_hub.DatasetCard` of a folder holding the configs of `reports`."""
    from huggingface_hub import DatasetCard, DatasetCardData

    reports = sorted(reports, key=lambda r: r["variant"])
    first = reports[0]
    repo_id = repo_id or f"{PLACEHOLDER_ORG}/crema-d"
    synthetic = first["source"] == "synthetic"
    tasks = [_tasks(r) for r in reports]
    example = _example_config(reports)
    data = DatasetCardData(
        pretty_name=PRETTY_NAME,
        license="odbl",
        language=["en"],
        task_categories=sorted(set().union(*(c for c, _ in tasks))) or None,
        task_ids=sorted(set().union(*(i for _, i in tasks))) or None,
        size_categories=[size_category(max(r["samples"] for r in reports))],
        tags=["emotion-recognition", "crema-d", "audio-visual", "webdataset"] + (["synthetic"] if synthetic else []),
        configs=[
            {"config_name": r["variant"],
             "data_files": [{"split": s, "path": f"{r['variant']}/{s}-*.tar"} for s in r["splits"]],
             **({"default": True} if r is example else {})}
            for r in reports
        ],
        dataset_info=[{"config_name": r["variant"], "features": _features(r)} for r in reports],
    )
    rows = [[f"`{r['variant']}`", r["description"], r["shape"],
             ", ".join(f"{s} {v['samples']}" for s, v in r["splits"].items()), len(r["skipped"])]
            for r in reports]
    table = markdown_table(["config", "what a sample holds", "tensor from `crema_tools.load`", "splits (samples)",
                            "skipped clips"], rows)
    fold = first.get("fold")
    split_file = Report(first).split_file
    build_args = (" ".join(f"--variant {r['variant']}" for r in reports) + f" --protocol {first['protocol']}"
                  + (f" --fold {fold}" if fold is not None else "")
                  + "".join(f" --split-file {name}" for name in (split_file or {}).get("given", []))
                  + f" --seed {first['seed']}"
                  + "".join(f" {flag} {value}" for r in reports for flag, value in r.get("build", {}).get("options", {}).items()))
    card = DatasetCard.from_template(
        data,
        template_str=card_template("dataset_card.md"),
        source_banner=SYNTHETIC_BANNER if synthetic else "",
        version=__version__,
        config_table=table,
        repo_id=repo_id,
        example_config=example["variant"],
        default_reason=_default_reason(example),
        example_split="train" if "train" in example["splits"] else next(iter(example["splits"])),
        video_configs=_storing(reports, "video"),
        mel_configs=_storing(reports, "mel"),
        protocol=_protocol_text(first),
        protocol_description=first["protocol_description"],
        split_file=_split_file_text(first),
        actors=_actors_lines(reports),
        source_text="synthetic sample made by crema-tools" if synthetic else "the official CREMA-D release",
        build_args=build_args,
        resizing=[line for r in reports for line in _resizing(r)],
    )
    card.text = card.text.rstrip("\n") + "\n\n" + record_section(build_record(reports))
    return card


def render_card(reports: list[dict], repo_id: str | None = None) -> str:
    """The card's text (YAML header and Markdown body)."""
    return str(dataset_card(reports, repo_id))


def read_reports(folder: Path) -> list[Report]:
    return Report.find(folder)


def write_card(out: Path, repo_id: str | None = None) -> None:
    """(Re)write `out/README.md` from the reports of the configs in `out`; snippets name `repo_id`
    (default: a `<your-org>/<folder name>` placeholder)."""
    reports = read_reports(out)
    if reports:
        card = dataset_card(reports, repo_id or placeholder_repo_id(out))
        tmp = Path(out) / f".README.md.tmp-{os.getpid()}"
        tmp.write_text(str(card), encoding="utf-8")
        os.replace(tmp, Path(out) / "README.md")  # a reader never sees half a card
