"""`crema-tools inspect`: what a built dataset folder holds, as tables and a contact sheet per config.

Counts come from every sample's metadata (only the `json` member of each sample is read, so large
shards cost little); images, videos and spectrograms are decoded only for the few samples drawn
on the contact sheet. The sheets are written outside the dataset folder, which must stay
uploadable as it is.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from PIL import Image, ImageDraw

from ..corpus import EMOTION_NAMES, EMOTIONS, INTENSITIES
from ..errors import LoadError
from ..format.report import REPORT_NAME, Report, ReportError, actor_overlap, actors_text, check_shards
from ..format.shards import iter_members
from ..hub import check_repo_id
from ..loading.dataset import resolve
from ..media.pictures import BACKGROUND, THUMB, WARN, font, placeholder
from ..representations import REPRESENTATIONS
from ..tables import text_table

DEFAULT_SHEET_DIR = Path("crema-tools-inspect")
SEXES = ("Female", "Male")
SPLIT_ORDER = ("train", "validation", "test")  # report.json stores splits sorted by name
REASON_CHARS = 60
MAX_LISTED = 20  # ids and shard files listed per section before "... and N more"
MB = 1_000_000

# contact sheet geometry, in pixels (the samples' pictures are their representations' previews)
PAD, LABEL_W, TITLE_H, CAPTION_H = 8, 120, 30, 18
INK = (20, 20, 20)


@dataclass
class Shard:
    split: str
    name: str
    size: int  # bytes
    samples: int = 0


@dataclass
class Pick:
    """A sample chosen for the contact sheet: its metadata and its media, still encoded (emptied once drawn)."""

    meta: dict
    media: dict[str, bytes]


@dataclass
class VariantSummary:
    """One built config: its report.json, what its shards really hold, and where its sheet went."""

    name: str
    report: Report
    counts: dict[str, dict[str, Counter]] = field(default_factory=dict)  # dimension -> split -> value counts
    shards: list[Shard] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the shards disagree with report.json, or are unreadable
    picks: dict[str, list[Pick]] = field(default_factory=dict)  # emotion -> samples for the sheet
    sheet: Path | None = None

    @property
    def splits(self) -> list[str]:
        return _ordered(SPLIT_ORDER, set(self.report.get("splits", {})))

    def count(self, dimension: str, split: str) -> Counter:
        """Samples of `split` by value of `dimension` (emotion, intensity, sex, face)."""
        return self.counts.get(dimension, {}).get(split, Counter())

    @property
    def uses_face(self) -> bool:
        return any(v in (True, False) for by_split in self.counts.get("face", {}).values() for v in by_split)


@dataclass
class InspectReport:
    folder: Path
    variants: list[VariantSummary]
    in_progress: list[str] = field(default_factory=list)  # a running build, unfinished builds kept for a resume

    @property
    def sheets(self) -> dict[str, Path]:
        """The contact sheets written, by config name."""
        return {v.name: v.sheet for v in self.variants if v.sheet is not None}

    @property
    def synthetic(self) -> bool:
        return any(v.report.get("source") == "synthetic" for v in self.variants)

    @property
    def ok(self) -> bool:
        """False when some shard is missing, unreadable or disagrees with its report.json."""
        return not any(v.problems for v in self.variants)

    def render(self) -> str:
        """Plain-text tables, one section per config; a synthetic build is flagged at the very top."""
        lines = synthetic_banner() if self.synthetic else []
        lines.append(f"Dataset {self.folder}: {len(self.variants)} config(s) inspected "
                     f"({', '.join(v.name for v in self.variants)})")
        lines += self.in_progress
        for v in self.variants:
            lines += [""] + render_variant(v)
        return "\n".join(lines)


# ---------------------------------------------------------------- entry point


def inspect_dataset(path_or_repo_id: str | Path, variants: Sequence[str] | None = None,
                    sheet_dir: str | Path | None = None, per_emotion: int = 4) -> InspectReport:
    """Count and picture the configs of a built dataset (a local folder or a Hub repo `owner/name`).

    `variants=None` inspects every built config. One contact sheet per config is written to
    `sheet_dir/<variant>.png` (default `./crema-tools-inspect/`), never into the dataset folder;
    `per_emotion=0` writes none. Raises `LoadError` for a missing folder, a folder with no built
    config, or a config that is not built there.
    """
    folder, names = locate(path_or_repo_id, variants)
    out = Path(sheet_dir) if sheet_dir is not None else DEFAULT_SHEET_DIR
    summaries = []
    for name in names:
        s = scan_variant(folder, name, max(per_emotion, 0))
        if per_emotion > 0:
            out.mkdir(parents=True, exist_ok=True)
            s.sheet = write_contact_sheet(s, out / f"{name}.png", per_emotion)
        for pick in (p for picks in s.picks.values() for p in picks):
            pick.media = {}  # drawn: no need to hold a config's videos while the next one is read
        summaries.append(s)
    from ..builder.outdir import describe_partial

    return InspectReport(folder, summaries, describe_partial(folder))


def built_variants(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("*/report.json"))


def locate(path_or_repo_id: str | Path, variants: Sequence[str] | None) -> tuple[Path, list[str]]:
    """The local folder and the configs to inspect; from the Hub, only the configs asked for are downloaded."""
    local = Path(path_or_repo_id)
    if not local.is_dir():
        return hub_folder(str(path_or_repo_id), variants)
    built = built_variants(local)
    if not built:
        from ..builder.outdir import describe_partial

        raise LoadError(f"{local}: no built config here (no <variant>/report.json); "
                        f"build one with `crema-tools build --variant 2d-multimodal --out {local}`"
                        + "".join(f" {line}" for line in describe_partial(local)))
    names = list(dict.fromkeys(variants or built))
    missing = [n for n in names if n not in built]
    if missing:
        raise LoadError(f"{local}: config {missing[0]!r} is not built here (built: {', '.join(built)})")
    return local, names


def hub_folder(repo_id: str, variants: Sequence[str] | None) -> tuple[Path, list[str]]:
    """Named configs go straight to `resolve` (so a cached download works offline); none named: list the repo."""
    names = list(dict.fromkeys(variants or hub_variants(repo_id)))
    folder = Path()
    for name in names:  # the same snapshot folder each time, one more config in it
        folder = resolve(repo_id, name)
    missing = [n for n in names if not (folder / n / "report.json").is_file()]
    if missing:
        raise LoadError(f"{repo_id}: config {missing[0]!r} is not built in this Hub repo "
                        f"(its card lists: {', '.join(card_configs(folder)) or 'none'})")
    return folder, names


def card_configs(folder: Path) -> list[str]:
    """The config names in the YAML header of a dataset card, which `resolve` always downloads."""
    import yaml

    try:
        header = (folder / "README.md").read_text().split("---", 2)[1]
        return sorted(c["config_name"] for c in yaml.safe_load(header).get("configs", []))
    except (OSError, IndexError, AttributeError, KeyError, TypeError, yaml.YAMLError):
        return []


def hub_variants(repo_id: str) -> list[str]:
    """The configs a Hub dataset repo holds (folders with a report.json), so only those are downloaded."""
    check_repo_id(repo_id)
    from huggingface_hub import HfApi

    try:
        files = HfApi().list_repo_files(repo_id, repo_type="dataset")
    except Exception as e:  # network, missing repo, auth: all end the same way for the user
        raise LoadError(f"{repo_id}: no such folder, and the Hub dataset repo cannot be listed "
                        f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    names = sorted(f.split("/")[0] for f in files if f.count("/") == 1 and f.endswith("/report.json"))
    if not names:
        raise LoadError(f"{repo_id}: the Hub dataset repo holds no built config (no <variant>/report.json)")
    return names


# ---------------------------------------------------------------- reading the shards


def read_report(folder: Path, name: str) -> Report:
    try:
        return Report.load(folder / name / REPORT_NAME)
    except ReportError as e:
        raise LoadError(str(e)) from None


def iter_samples(path: Path) -> Iterator[tuple[str, dict, Callable[[], dict[str, bytes]]]]:
    """(key, metadata, read_media) per sample of a shard, reading only the json.

    Unlike `read_shard`, the other members stay on disk unless `read_media()` is called (while
    iterating), so counting a shard of videos costs no more than counting one of thumbnails.
    """
    with tarfile.open(path, "r:") as tar:
        for key, infos in iter_members(tar):
            yield _sample(tar, key, infos)


def _sample(tar: tarfile.TarFile, key: str, infos: dict[str, tarfile.TarInfo]):
    meta = json.loads(tar.extractfile(infos["json"]).read()) if "json" in infos else {}

    def read_media() -> dict[str, bytes]:
        return {ext: tar.extractfile(i).read() for ext, i in infos.items() if ext not in ("json", "cls")}

    return key, meta, read_media


def sheet_order(splits: list[str]) -> list[str]:
    """Test first: the contact sheet shows held-out samples, topped up from the other splits."""
    return (["test"] if "test" in splits else []) + [s for s in splits if s != "test"]


def scan_variant(folder: Path, name: str, per_emotion: int) -> VariantSummary:
    """Count every sample's metadata and keep the media of the first `per_emotion` per emotion."""
    s = VariantSummary(name, read_report(folder, name))
    s.problems += check_shards(s.report, folder / name, count=False, called="report.json").problems  # missing and stray shards
    for split in sheet_order(s.splits):
        for shard in s.report.shards(split):
            scan_shard(s, folder / name / shard.name, split, per_emotion)
    s.problems += compare_with_report(s)
    s.shards.sort(key=lambda sh: (s.splits.index(sh.split), sh.name))
    return s


def scan_shard(s: VariantSummary, path: Path, split: str, per_emotion: int) -> None:
    if not path.is_file():
        return  # a problem check_shards names
    shard = Shard(split, path.name, path.stat().st_size)
    s.shards.append(shard)
    try:
        for key, meta, read_media in iter_samples(path):
            shard.samples += 1
            tally(s, split, meta)
            picks = s.picks.setdefault(meta.get("emotion", "?"), [])
            if len(picks) < per_emotion:
                picks.append(Pick({"clip_id": key, **meta}, read_media()))
    except (tarfile.TarError, ValueError, OSError) as e:
        s.problems.append(f"{path.name}: unreadable after {shard.samples} samples ({e.__class__.__name__}: {e})")


def tally(s: VariantSummary, split: str, meta: dict) -> None:
    values = {"emotion": meta.get("emotion", "?"), "intensity": meta.get("intensity", "?"),
              "sex": meta.get("actor_sex", "?"), "face": meta.get("face_found"), "actor": meta.get("actor_id", "?")}
    for dimension, value in values.items():
        s.counts.setdefault(dimension, {}).setdefault(split, Counter())[value] += 1


def compare_with_report(s: VariantSummary) -> list[str]:
    """Where the shards' own metadata disagrees with the numbers report.json (and the card) state."""
    problems = []
    for split, info in s.report.get("splits", {}).items():
        found = s.count("emotion", split)
        if sum(found.values()) != info.get("samples"):
            problems.append(f"{split}: report.json says {info.get('samples')} samples, the shards hold {sum(found.values())}")
        elif dict(found) != info.get("per_emotion", dict(found)):
            problems.append(f"{split}: per-emotion counts differ from report.json ({dict(sorted(found.items()))} "
                            f"vs {info.get('per_emotion')})")
    recorded, found = s.report.actors_in_several_splits, actor_overlap({sp: s.count("actor", sp) for sp in s.splits})
    if recorded is not None and not problems and recorded != found["in_more_than_one_split"]:
        problems.append(f"report.json says {recorded} actors appear in more than one split, the shards say {found['in_more_than_one_split']}")
    return problems


# ---------------------------------------------------------------- text


def synthetic_banner() -> list[str]:
    bar = "!" * 78
    return [bar,
            "!!! SYNTHETIC DATA: built from the synthetic sample that ships with crema-tools (made-up",
            "!!! faces and voices), NOT from CREMA-D. Numbers measured on it say nothing about emotions.",
            bar, ""]


def render_variant(v: VariantSummary) -> list[str]:
    r = v.report
    total = sum(sum(c.values()) for c in v.counts.get("emotion", {}).values())
    per_split = ", ".join(f"{sp} {sum(v.count('emotion', sp).values()):,}" for sp in v.splits)
    fold = f" fold {r['fold']}" if r.get("fold") is not None else ""
    split_file = f"; split file {r.split_file.get('name')} (sha256 {r.split_file.get('sha256')})" if r.split_file else ""
    lines = [f"== {v.name}: {r.get('description', '')} ==",
             f"shape {r.get('shape')}; {total:,} samples ({per_split}); protocol {r.get('protocol')}{fold}, "
             f"seed {r.get('seed')}{split_file}; source {r.get('source')}",
             "speakers: " + actors_text(actor_overlap({sp: v.count("actor", sp) for sp in v.splits}))]
    lines += [""] + count_table(v)
    lines += [""] + skipped_lines(r.get("skipped", []), v.name)
    lines += face_lines(v)
    lines += [""] + shard_lines(v)
    if v.problems:
        lines += ["", f"PROBLEMS ({len(v.problems)}): the shards do not match report.json"]
        lines += [f"  {p}" for p in v.problems]
    if v.sheet is not None:
        lines += ["", f"Contact sheet: {v.sheet}"]
    return lines


def _ordered(known: Sequence, seen: set) -> list:
    """The known values in their canonical order, then any unexpected ones (so nothing is hidden)."""
    return [k for k in known if k in seen] + sorted((k for k in seen if k not in known), key=str)


def count_table(v: VariantSummary) -> list[str]:
    """Split columns by emotion, intensity and actor sex rows (and face detection, for face configs)."""
    groups = [("emotion", "emotion", EMOTIONS, lambda e: f"{e} {EMOTION_NAMES.get(e, '')}".strip()),
              ("intensity", "intensity", INTENSITIES, str), ("actor sex", "sex", SEXES, str)]
    if v.uses_face:
        groups.append(("face", "face", (True, False), lambda f: {True: "found", False: "not found"}.get(f, "n/a")))
    rows = []
    for title, key, known, label in groups:
        by_split = v.counts.get(key, {})
        seen = set().union(*(c.keys() for c in by_split.values())) if by_split else set()
        for i, value in enumerate(_ordered(known, seen)):
            cells = [by_split.get(sp, Counter())[value] for sp in v.splits]
            rows.append([title if i == 0 else "", label(value)] + [f"{n:,}" for n in cells] + [f"{sum(cells):,}"])
    return text_table(["", ""] + v.splits + ["total"], rows, "ll" + "r" * (len(v.splits) + 1), indent="  ")


def skipped_lines(skipped: list[dict], name: str) -> list[str]:
    """Skipped clips grouped by reason; the clip's own id is masked so one cause makes one group."""
    if not skipped:
        return ["Skipped clips: none"]
    groups: dict[str, list[str]] = {}
    for item in skipped:
        reason = str(item.get("reason", "")).replace(str(item.get("clip_id")), "<clip>")
        short = reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 3] + "..."
        groups.setdefault(short, []).append(str(item.get("clip_id")))
    rows = [[f"{len(ids):,}", reason, "e.g. " + ", ".join(ids[:3])]
            for reason, ids in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))]
    return [f"Skipped clips: {len(skipped):,} (not in the shards; full reasons in {name}/report.json)"] + \
        text_table(["count", "reason", "clips"], rows, "rll", indent="  ")


def face_lines(v: VariantSummary) -> list[str]:
    ids = v.report.get("face_not_found", [])
    if not v.uses_face:
        return []
    if not ids:
        return ["Face detection failures: none"]
    shown = ", ".join(ids[:MAX_LISTED]) + (f" ... and {len(ids) - MAX_LISTED:,} more" if len(ids) > MAX_LISTED else "")
    return [f"Face detection failures: {len(ids):,} (centre crop used instead): {shown}"]


def shard_lines(v: VariantSummary) -> list[str]:
    rows = []
    for split in v.splits:
        mine = [sh for sh in v.shards if sh.split == split]
        for sh in mine[:MAX_LISTED]:
            rows.append([split, sh.name, f"{sh.samples:,}", f"{sh.size / MB:,.2f}"])
        if len(mine) > MAX_LISTED:
            rest = mine[MAX_LISTED:]
            rows.append([split, f"... {len(rest)} more", f"{sum(s.samples for s in rest):,}",
                         f"{sum(s.size for s in rest) / MB:,.2f}"])
    size = sum(sh.size for sh in v.shards)
    rows.append(["total", f"{len(v.shards)} shards", f"{sum(sh.samples for sh in v.shards):,}", f"{size / MB:,.2f}"])
    return [f"Shards in {v.name}/:"] + text_table(["split", "file", "samples", "MB"], rows, "llrr", indent="  ")


# ---------------------------------------------------------------- contact sheet


def sample_picture(name: str, media: dict[str, bytes]) -> Image.Image:
    """What a sample shows, drawn by its representation (a video strip, an image, a spectrogram)."""
    rep = REPRESENTATIONS.get(name)
    if rep is None:
        return placeholder(f"unknown config {name}")
    return rep.preview(media)


def picture_or_placeholder(name: str, pick: Pick, problems: list[str]) -> Image.Image:
    try:
        return sample_picture(name, pick.media)
    except Exception as e:  # one undecodable sample must not hide the others
        problems.append(f"{pick.meta.get('clip_id')}: cannot decode for the contact sheet ({e.__class__.__name__}: {e})")
        return placeholder(f"cannot decode: {e.__class__.__name__}")


def write_contact_sheet(v: VariantSummary, path: Path, per_emotion: int) -> Path:
    """One row per emotion, up to `per_emotion` samples each, captioned with the clip id."""
    rows = {e: [(p, picture_or_placeholder(v.name, p, v.problems)) for p in v.picks.get(e, [])[:per_emotion]]
            for e in _ordered(EMOTIONS, set(EMOTIONS) | set(v.picks))}
    pictures = [img for cells in rows.values() for _, img in cells]
    cell_w = max((img.width for img in pictures), default=THUMB)
    cell_h = max((img.height for img in pictures), default=THUMB)
    cols = max(1, max(len(cells) for cells in rows.values()))
    sheet = Image.new("RGB", (LABEL_W + cols * (cell_w + PAD) + PAD, TITLE_H + len(rows) * (cell_h + CAPTION_H + PAD) + PAD),
                      BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw_title(draw, v)
    for r, (emotion, cells) in enumerate(rows.items()):
        y = TITLE_H + r * (cell_h + CAPTION_H + PAD)
        draw.text((PAD, y + cell_h // 2 - 16), emotion, fill=INK, font=font(16))
        draw.text((PAD, y + cell_h // 2 + 4), EMOTION_NAMES.get(emotion, ""), fill=INK, font=font(12))
        if not cells:
            draw.text((LABEL_W, y + cell_h // 2 - 8), "no sample", fill=WARN, font=font(12))
        for c, (pick, img) in enumerate(cells):
            x = LABEL_W + c * (cell_w + PAD)
            sheet.paste(img, (x, y))
            draw_caption(draw, pick.meta, x, y + img.height + 2)
    sheet.save(path, format="PNG")
    return path


def draw_title(draw: ImageDraw.ImageDraw, v: VariantSummary) -> None:
    r = v.report
    synthetic = r.get("source") == "synthetic"
    title = f"{v.name}: shape {r.get('shape')}, protocol {r.get('protocol')}, seed {r.get('seed')}"
    draw.text((PAD, 7), title, fill=INK, font=font(14))
    if synthetic:
        draw.text((PAD + draw.textlength(title, font=font(14)) + 16, 7), "SYNTHETIC DATA, not CREMA-D",
                  fill=WARN, font=font(14))


def draw_caption(draw: ImageDraw.ImageDraw, meta: dict, x: int, y: int) -> None:
    """Clip id and split; a face the detector missed is flagged, as it is a centre crop."""
    text = f"{meta.get('clip_id')} {meta.get('split', '')}".strip()
    draw.text((x, y), text, fill=INK, font=font(11))
    if meta.get("face_found") is False:
        draw.text((x + draw.textlength(text, font=font(11)) + 6, y), "no face", fill=WARN, font=font(11))
