"""The `crema-tools` command line: a thin layer over the library, one command per job."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import CremaToolsError
from .representations import REPRESENTATIONS

app = typer.Typer(
    help="Turn the CREMA-D corpus into reproducible, Hub-ready emotion-recognition datasets.\n\n"
    "Start with `crema-tools build --variant 2d-multimodal`: without --raw and without ./CREMA-D it "
    "builds from the synthetic sample that ships with crema-tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"crema-tools {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Turn the CREMA-D corpus into reproducible, Hub-ready emotion-recognition datasets."""


def _default_workers() -> int:
    """On 2 cores a decoding process costs MTCNN its second thread and is slower than none."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores - 2)


@app.command()
def build(
    variant: List[str] = typer.Option(
        ..., "--variant", "-v",
        help="Representation to build; repeat for several (one pass serves all): " + ", ".join(REPRESENTATIONS) + ".",
    ),
    raw: Optional[Path] = typer.Option(
        None, help="CREMA-D folder holding VideoFlash/ and AudioWAV/. Default: ./CREMA-D if it exists, "
        "else the built-in synthetic sample."),
    out: Path = typer.Option(Path("crema-d-datasets"),
                             help="Dataset folder to write (a Hugging Face dataset repository layout)."),
    protocol: Optional[str] = typer.Option(
        None, help="Split protocol: paper (random over clips, as the reference paper; the default), "
        "speaker (actor-disjoint 60/20/20 by sex), audeering (the published actor split), "
        "ogm-ge (the OGM-GE release's 6,698/744 split), speaker-kfold (with --fold 0-4), "
        "hicmae (HiCMAE's 5 actor-disjoint folds, with --fold 1-5), split-file (with --split-file; "
        "the default when it is given). report.json, the card and inspect say how many actors appear "
        "in more than one split."),
    fold: Optional[int] = typer.Option(None, help="Which fold is the test part: speaker-kfold 0-4 (of its 5 "
                                       "actor-disjoint folds); hicmae 1-5 (HiCMAE's numbering)."),
    split_file: Optional[List[Path]] = typer.Option(
        None, "--split-file",
        help="A lab's published split, detected from the content: OGM-GE/PMR clip_id,label CSV, HiCMAE "
        "'path path label' lines, EmoBox JSON lines (each one file per split, the split named by the file: "
        "train, test, valid(ation)), or a clip_id,split CSV. Repeat it for each file, or give a folder of "
        "them. Checked whole before anything is built; clips it does not list are reported as skipped; its "
        "name and sha256 go into report.json, the card and the models' metrics."),
    seed: int = typer.Option(0, help="Seed of the split and of the shard order."),
    workers: int = typer.Option(_default_workers(), help="Decoding processes (0: decode in this process)."),
    device: Optional[str] = typer.Option(None, help="Device for face detection (MTCNN, 2D crops and --face-crop): cpu, cuda. "
                                           "Default: cuda when there is one."),
    face_crop: bool = typer.Option(False, "--face-crop",
                                   help="3d-vision / 3d-multimodal: crop frames to the face, found by MTCNN on "
                                   "5 keyframes per clip (batched across clips on --device) and interpolated in between."),
    ogm_ge_fps: str = typer.Option(
        "1", "--ogm-ge-fps", metavar="N",
        help="ogm-ge: frames stored per second of video, OGM-GE's --fps N: the frames their extraction keeps "
        "into Image-{N:02d}-FPS (of each second of the 30 fps video, places 0, 30//N, 2*(30//N), ...; N=3: "
        "frames 0, 10, 20, 30, ...). 1 (their default) keeps the first frame of every second. Load with "
        "frames_per_clip=N for the N frames their loader reads; 1 to 30."),
    force: bool = typer.Option(False, "--force", help="Replace what crema-tools did not write in --out (a README.md, "
                               "files in a config's folder) instead of refusing."),
    unit_size: int = typer.Option(256, "--unit-size", help="Clips per work unit: each writes one shard per split, is "
                                  "what a killed build resumes from and what parallel processes share out."),
) -> None:
    """Build dataset configs as WebDataset shards with a dataset card, ready for `load_dataset`.

    Run it again after an interruption: it resumes, redoing only the unfinished work units.
    Under `accelerate launch -m crema_tools build ...` the processes share the work units.
    """
    from .builder.pipeline import BuildInterrupted, SaidByProcessZero, check_options
    from .builder.pipeline import build as run_build
    from .representations import BuildOptions
    from .synthetic import ensure_sample

    rank = os.environ.get("RANK", "0") or "0"
    fps = int(ogm_ge_fps) if ogm_ge_fps.strip().lstrip("+-").isdigit() else ogm_ge_fps  # checked with the rest
    try:  # arguments first: a typo costs nothing, not a sample corpus written first
        check_options(variant, protocol, seed, workers, fold, unit_size, split_file or None, BuildOptions(ogm_ge_fps=fps))
    except CremaToolsError as e:
        fail(str(e))
    if raw is None:
        if Path("CREMA-D").is_dir():
            raw = Path("CREMA-D")
        else:
            typer.secho(
                "\n*** No --raw given and no ./CREMA-D folder: building from the SYNTHETIC SAMPLE that ships "
                "with crema-tools. ***\n*** Its faces and voices are made up; use --raw PATH for the real corpus. ***\n",
                fg=typer.colors.YELLOW, bold=True, err=True)
            raw = ensure_sample()
    try:
        reports = run_build(raw, out, variant, protocol=protocol, seed=seed, workers=workers, device=device,
                            face_crop=face_crop, fold=fold, force=force, unit_clips=unit_size,
                            split_file=split_file or None, ogm_ge_fps=fps)
    except SaidByProcessZero:
        raise typer.Exit(2) from None
    except CremaToolsError as e:
        fail(str(e) if rank == "0" else f"process {rank}: {e}")
    except BuildInterrupted as e:
        fail(str(e) if rank == "0" else f"process {rank}: {e}", 128 + e.signum)
    if reports is not None:  # None: a process other than process 0 of a parallel build
        _print_summary(out, reports)


def _print_summary(out: Path, reports: dict) -> None:
    typer.echo(f"\nWrote {out}/ (dataset card: {out}/README.md)")
    for name, r in reports.items():
        splits = ", ".join(f"{s} {v['samples']}" for s, v in r["splits"].items())
        typer.echo(f"  {name:<14} {splits}; skipped {len(r['skipped'])}; no face {len(r['face_not_found'])}  -> {out}/{name}/")
    skipped = {n: len(r["skipped"]) for n, r in reports.items() if r["skipped"]}
    if skipped:
        first = next(r for r in reports.values() if r["skipped"])["skipped"][0]
        typer.echo(
            "skipped clips: " + ", ".join(f"{n} {k}" for n, k in skipped.items())
            + f" (e.g. {first['clip_id']}: {first['reason']}); reasons in <variant>/report.json", err=True)
    first = next(iter(reports))
    typer.echo(f'Load it: datasets.load_dataset("{out}", "{first}") or crema_tools.load("{out}", "{first}", "train")')


@app.command()
def sample(
    to: Path = typer.Option(None, help="Folder to write the synthetic corpus to. Default: the cache, reused by `build`."),
    seed: int = typer.Option(0, help="Seed of the synthetic media."),
) -> None:
    """Write the synthetic sample corpus (real clip ids and formats, made-up media) in the CREMA-D layout."""
    from .synthetic import ensure_sample, generate_corpus

    if to is None:
        path = ensure_sample(seed)
    else:
        generate_corpus(to, seed=seed, progress=True)
        path = to
    typer.echo(f"synthetic corpus: {path}")


@app.command()
def fetch(
    to: Path = typer.Option(Path("CREMA-D"), help="Folder to download into (VideoFlash/, AudioWAV/, AudioMP3/)."),
    what: str = typer.Option("video,wav", help="Which media: any of video, wav, mp3, or all."),
    base_url: Optional[str] = typer.Option(None, help="Mirror to download from instead of the official repository's LFS media URLs."),
    jobs: int = typer.Option(8, help="Parallel downloads."),
) -> None:
    """Download the official media, resuming partial files, checking each file's size and sha256.

    Re-running downloads only what is missing or wrong; a file that fails its check is never kept
    under its real name.
    """
    from .ops.fetch import DEFAULT_BASE_URL
    from .ops.fetch import fetch as run_fetch

    try:
        result = run_fetch(to, what=what, base_url=base_url or DEFAULT_BASE_URL, jobs=jobs)
    except (ValueError, CremaToolsError) as e:
        fail(str(e))
    typer.echo(result.summary())
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def verify(
    raw: Path = typer.Option(Path("CREMA-D"), help="The CREMA-D folder to check against the official manifest."),
    what: str = typer.Option("all", help="Which media: any of video, wav, mp3, or all."),
    quick: bool = typer.Option(False, "--quick", help="Check sizes only, no sha256 (seconds instead of minutes)."),
    jobs: int = typer.Option(4, help="Files hashed in parallel."),
) -> None:
    """Check a local copy: missing, extra, Git LFS pointer and corrupt files; exit 1 unless complete and official."""
    from .ops.verify import verify as run_verify

    try:
        report = run_verify(raw, what=what, quick=quick, jobs=jobs)
    except (ValueError, CremaToolsError) as e:
        fail(str(e))
    typer.echo(report.render())
    raise typer.Exit(0 if report.complete_and_official else 1)


@app.command("inspect")
def inspect_command(
    dataset: str = typer.Argument(..., help="A built dataset folder (the --out of build) or a Hub dataset repo id owner/name."),
    variant: Optional[List[str]] = typer.Option(None, "--variant", "-v", help="Config to inspect; repeat for several. Default: every built config."),
    sheet_dir: Path = typer.Option(Path("crema-tools-inspect"), help="Folder for the contact sheets (<variant>.png); keep it outside the dataset folder."),
    per_emotion: int = typer.Option(4, help="Samples per emotion on each contact sheet (0: no sheets)."),
) -> None:
    """Counts per split, emotion, intensity and actor sex; actors shared between splits; skipped clips; face-detection
    failures; shard sizes; contact sheets."""
    from .ops.inspect import inspect_dataset

    try:
        report = inspect_dataset(dataset, variant or None, sheet_dir=sheet_dir, per_emotion=per_emotion)
    except CremaToolsError as e:
        fail(str(e))
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def push(
    dataset: Path = typer.Argument(..., help="A built dataset folder (the --out of build)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repository ORG/NAME; created if missing."),
    private: bool = typer.Option(False, "--private",
                                 help="Create the repository private (an existing one keeps its visibility)."),
    revision: Optional[str] = typer.Option(None, help="Branch to push to, created from main if missing. Default: main."),
) -> None:
    """Check a built dataset folder, then upload it to a Hub dataset repository.

    Checks first (card YAML, every config's shards, sample counts of card, reports and shards, no
    partial folder left by an interrupted build) and uploads nothing if one fails. The card is
    rendered again so that its snippets name --repo-id. Run it again to resume an interrupted
    upload. The token comes from `hf auth login` or the HF_TOKEN environment variable.
    """
    from .ops.publish import push_dataset, validate_dataset

    try:
        check = validate_dataset(dataset)
        typer.echo(f"checked {check.summary()}")
        result = push_dataset(dataset, repo_id, private=private, revision=revision, check=check)
    except CremaToolsError as e:
        fail(str(e))
    example = result.check.default_config or result.check.configs[0]  # the card's default: the headline config
    revision_arg = f', revision="{result.revision}"' if result.revision != "main" else ""
    typer.echo(f"pushed to {result.url} (revision {result.revision}, commit {result.commit})")
    typer.echo(f'Load it: datasets.load_dataset("{repo_id}", "{example}"{revision_arg}) '
               f'or crema_tools.load("{repo_id}", "{example}", "train"{revision_arg})')


@app.command()
def predict(
    videos: List[Path] = typer.Argument(..., help="Videos (FLV, MP4, MOV, WebM, MKV, ...) or folders of them."),
    model: str = typer.Option(..., "--model", "-m", help="A checkpoint folder (model_zoo.train --out) or Hub model id ORG/NAME."),
    wav: Optional[Path] = typer.Option(None, help="Audio to use instead of the video's own track (one video only)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    csv: Optional[Path] = typer.Option(None, help="Also write one CSV row per video to this file."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda. Default: cuda when there is one."),
) -> None:
    """The six emotions' probabilities for any video with a face and speech, by a model_zoo checkpoint.

    The video gets exactly the preprocessing of the model's variant (2D: middle-frame face crop and
    mel; 3D: 24 fps frames and aligned mel chunks, padded or sampled as the model wants). A video
    without a face is centre-cropped and one without audio gets a silent spectrogram: each is said.

    Every video gets its row (in the table, --json and --csv alike): its probabilities, or the
    reason it could not be read, also said on stderr; one bad file costs only its own row.

    Exit status: 0 when every video was predicted; 1 when one or more could not be read (the others
    are still predicted); 2 when nothing could run (a bad argument, a missing path, a model that does not load).
    """
    import model_zoo  # the model half, reached only when this command runs
    from model_zoo.predict import as_json as to_json
    from model_zoo.predict import find_videos
    from model_zoo.predict import predict as run_predict

    try:
        paths = find_videos(videos)
        if wav is not None and len(paths) != 1:
            fail("--wav goes with one video")
        import torch

        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        net = model_zoo.from_pretrained(model).to(dev)
    except CremaToolsError as e:
        fail(str(e))
    from tqdm.auto import tqdm

    from .corpus import EMOTIONS

    results = []
    for path in tqdm(paths, desc="predicting", unit="video", disable=len(paths) < 2, file=sys.stderr):
        results += run_predict(net, [path], wav=wav, device=dev, keep_going=True)
    names = list(net.pretrained_cfg.label_names or EMOTIONS)
    failed = [r for r in results if not r.ok]
    if as_json:
        typer.echo(to_json(results))
    else:
        from .tables import text_table

        rows = [[Path(r.path).name, r.emotion or "-",
                 *(f"{r.probabilities[n]:.3f}" if r.ok else "-" for n in names), *([r.error or ""] if failed else [])]
                for r in results]
        header = ["video", "emotion", *names, *(["could not be read"] if failed else [])]
        typer.echo("\n".join(text_table(header, rows, "ll" + "r" * len(names) + "l" * bool(failed))))
    for r in results:
        for note in r.notes:
            typer.echo(f"{Path(r.path).name}: {note}", err=True)
    for r in failed:
        typer.echo(f"error: {r.path}: {r.error}", err=True)
    if csv is not None:
        import csv as csv_module

        with open(csv, "w", newline="") as fh:
            writer = csv_module.writer(fh)
            writer.writerow(["path", "emotion", *names, "notes", "error"])
            for r in results:
                writer.writerow([r.path, r.emotion or "", *(f"{r.probabilities[n]:.6f}" if r.ok else "" for n in names),
                                 "; ".join(r.notes), r.error or ""])
    if failed:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
