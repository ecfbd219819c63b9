"""Publishing a built dataset folder as a Hugging Face dataset repository (`crema-tools push`).

    check = validate_dataset("crema-d-datasets")      # DatasetCheck, or a PublishError naming every problem
    result = push_dataset("crema-d-datasets", "my-org/crema-d", private=False, revision=None)
    # then: datasets.load_dataset("my-org/crema-d", "3d-multimodal")

Nothing is uploaded unless the folder passes `validate_dataset`: the card's YAML parses, every config
of the card has its report and its shards, the sample counts of the card (its build record,
`crema_tools.builder.card.card_record`), the reports and the shards agree (and the shards' sizes
and sha256 where the report records them), the configs share one provenance, and no interrupted
build left a partial folder. The card
is then rendered again so that its snippets name the repository, and the folder is uploaded with
`HfApi.upload_folder` (with hf_xet installed: a streamed, multi-commit upload that resumes when
run again). Shards and reports on the Hub that the folder no longer holds are deleted in the same
commit, so the repository mirrors the folder.

The token comes from huggingface_hub alone (`hf auth login` or HF_TOKEN); none is taken here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from ..builder.card import card_record, write_card
from ..errors import CremaToolsError
from ..format.report import PROVENANCE, Report, ReportError, check_shards
from ..hub import hub_errors, repo_url, require_repo_id, require_token

MAX_LISTED = 5  # problems named in the one-line error


class PublishError(CremaToolsError):
    """A dataset folder that is not ready to publish: the message lists what is wrong."""


@dataclass
class DatasetCheck:
    """What `validate_dataset` found in a folder that is ready to push."""

    folder: Path
    configs: list[str]
    samples: dict[str, dict[str, int]]  # config -> split -> samples counted in the shards
    files: list[str] = field(default_factory=list)  # what a push uploads, relative to the folder
    provenance: dict = field(default_factory=dict)
    default_config: str | None = None  # the card's `default: true` config, the one to show first

    @property
    def shards(self) -> int:
        return sum(1 for f in self.files if f.endswith(".tar"))

    def summary(self) -> str:
        total = sum(sum(s.values()) for s in self.samples.values())
        return (f"{self.folder}: {len(self.configs)} config(s) ({', '.join(self.configs)}), {self.shards} shards, "
                f"{total} samples; protocol {self.provenance.get('protocol')}, seed {self.provenance.get('seed')}"
                + (f", fold {self.provenance['fold']}" if self.provenance.get("fold") is not None else "")
                + f", {self.provenance.get('source')} media")


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit: str | None
    url: str
    check: DatasetCheck


def _card_header(readme: Path, problems: list[str]) -> dict | None:
    from huggingface_hub import DatasetCard

    if not readme.is_file():
        problems.append("no README.md (the dataset card): run `crema-tools build` again to write it")
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        problems.append("README.md has no YAML header")
        return None
    try:
        return DatasetCard(text).data.to_dict()
    except Exception as e:  # yaml.YAMLError, ValueError: one line naming the file is all the user needs
        problems.append(f"README.md: the YAML header does not parse ({str(e).splitlines()[0]})")
        return None


def validate_dataset(folder: str | Path, *, read_shards: bool = True) -> DatasetCheck:
    """Check that a built folder is complete and consistent; a PublishError lists every problem found.

    `read_shards=False` trusts the reports' sample counts instead of reading every shard's headers
    (and hashes): for checking a card again against a folder just checked in full.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PublishError(f"{folder}: no such folder; give the --out folder of `crema-tools build`")
    problems: list[str] = []
    partial = sorted(p.name for p in folder.iterdir() if ".partial" in p.name)
    if partial:
        problems.append(f"{', '.join(partial)}: left by an interrupted build; build again or delete it")
    header = _card_header(folder / "README.md", problems)
    try:
        reports = {r.variant: r for r in Report.find(folder)}
    except (ReportError, KeyError) as e:
        raise PublishError(f"{folder}: a report.json does not parse ({e})") from None
    if not reports:
        raise PublishError(f"{folder}: holds no built config (no <config>/report.json); build one with `crema-tools build`")

    provenances = {tuple(r.provenance.values()) for r in reports.values()}
    if len(provenances) > 1:
        problems.append("the configs were built with different protocols, seeds, folds or sources: "
                        + "; ".join(f"{n}: {', '.join(f'{k} {r.get(k)}' for k in PROVENANCE)}" for n, r in reports.items()))
    provenance = dict(zip(PROVENANCE, sorted(provenances, key=str)[0]))

    card_configs: dict[str, list] = {}
    card_samples: dict = {}
    default = None
    if header is not None:
        card_configs = {c.get("config_name"): c.get("data_files") or [] for c in header.get("configs") or []
                        if isinstance(c, dict)}
        default = next((c.get("config_name") for c in header.get("configs") or [] if isinstance(c, dict) and c.get("default")),
                       None)
        meta = card_record((folder / "README.md").read_text(encoding="utf-8")) or {}  # the build's record
        card_samples = meta.get("samples") or {}
        if not card_configs:
            problems.append("README.md: the YAML header lists no configs")
        for name in sorted(set(reports) - set(card_configs)):
            problems.append(f"{name}/ is built but not in the card: run `crema-tools build` with it again")
        for name in sorted(set(card_configs) - set(reports)):
            problems.append(f"the card lists config {name} but {name}/report.json is missing")
        if card_configs and {k: meta.get(k) for k in PROVENANCE} != provenance:
            problems.append(f"the card's provenance {({k: meta.get(k) for k in PROVENANCE})} is not the reports' {provenance}")

    files = ["README.md"]
    samples: dict[str, dict[str, int]] = {}
    for name, report in sorted(reports.items()):
        on_disk = sorted(p.name for p in (folder / name).glob("*.tar"))
        check = check_shards(report, folder / name, count=read_shards)
        problems += check.problems
        samples[name] = check.counts
        files += [f"{name}/{s.name}" for s in report.shards() if (folder / name / s.name).is_file()]
        for split, counted in check.counts.items():
            if header is not None and name in card_samples and (card_samples[name] or {}).get(split) != counted:
                problems.append(f"{name} {split}: the card says {(card_samples[name] or {}).get(split)} samples, "
                                f"the shards hold {counted}")
        if header is not None and name in card_configs:
            if name not in card_samples:
                problems.append(f"the card gives no sample counts for {name}: run `crema-tools build` again")
            for entry in card_configs[name]:
                pattern = entry.get("path", "") if isinstance(entry, dict) else str(entry)
                if not any(fnmatch(f"{name}/{s}", pattern) for s in on_disk):
                    problems.append(f"the card's data files {pattern!r} match no shard")
        files.append(f"{name}/report.json")

    if problems:
        shown = problems[:MAX_LISTED] + ([f"and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else [])
        raise PublishError(f"{folder} is not ready to publish: " + "; ".join(shown))
    return DatasetCheck(folder, sorted(reports), samples, files, provenance, default)


def push_dataset(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                 commit_message: str | None = None, check: DatasetCheck | None = None) -> PushResult:
    """Validate `folder`, render its card for `repo_id`, and upload it to that Hub dataset repository.

    The repository is created if missing (private if `private`; an existing one keeps its
    visibility); `revision` is a branch, created from main if missing. Run again after an
    interruption: what is already on the Hub is not uploaded twice. `check`: what
    `validate_dataset(folder)` just returned, not to read every shard twice.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    require_repo_id(repo_id)
    if check is None or Path(check.folder) != folder:
        check = validate_dataset(folder)
    require_token()
    write_card(folder, repo_id)
    check = validate_dataset(folder, read_shards=False)  # the card just written must pass as well
    api = HfApi()
    where = f"dataset repo {repo_id}" + (f" (revision {revision})" if revision else "")
    with hub_errors(where):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=folder, revision=revision,
            allow_patterns=check.files, delete_patterns=["*/*.tar", "*/report.json"],
            commit_message=commit_message or f"crema-tools push: {', '.join(check.configs)}",
        )
    return PushResult(repo_id, revision or "main", getattr(info, "oid", None), repo_url(repo_id, "dataset", revision), check)

