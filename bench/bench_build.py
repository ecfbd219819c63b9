"""Build speed against its floors and against FFmpeg's own pipeline, side by side, on the synthetic corpus.

Every case runs over the same clips, once per round; rounds repeat with the cases in a rotated
order (interleaved), and each figure is the median over rounds, so a busy machine slows every
case alike. Times are CPU ms per clip (user + system, this process and its workers) and wall ms
per clip; torch runs with `--threads` intra-op threads everywhere (1 by default: on a shared
machine idle OpenMP threads spin, and CPU time would count their waiting, not the work).

2D floor: what `2d-multimodal` cannot avoid, done the build's own best way: seek to and decode
the middle frame, read the audio and compute the mel, and one MTCNN call per `FACE_BATCH`
middle frames (the build batches the same way).
3D floors: decode-only (every frame of the FLV to its native YUV, and the audio), and what a
user would otherwise run: FFmpeg's own pipeline (decode, `fps=24`, `scale=224:224`, x264 with
the build's settings, one thread) plus the mel. The scale runs twice: with FFmpeg's default
(bicubic) and with the build's kernel (bilinear, exact rounding).

The builds are single-process (`--workers 0`) like the floors; `--workers 0 2` adds rows with
decoding processes. `--family x264` compares x264 settings on the build's own frames: size,
encode time, and decode time at load (the loader decodes every clip every epoch).

    python bench/bench_build.py [--actors 4] [--family 2d 3d x264] [--rounds 5] [--workers 0 ...]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import FULL_CORPUS_CLIPS, FULL_CORPUS_CLIPS_3D, corpus, cpu_seconds, load_average, machine, table  # noqa: E402

from crema_tools.builder.pipeline import FACE_BATCH, build  # noqa: E402
from crema_tools.media import decode as media  # noqa: E402
from crema_tools.media import video3d
from crema_tools.media.faces import detect_faces  # noqa: E402
from crema_tools.representations import Features  # noqa: E402
from crema_tools.representations.steps import step_mel  # noqa: E402

X264 = {
    "veryfast": {"preset": "veryfast", "x264-params": "mbtree=0"},
    "veryfast, tune fastdecode": {"preset": "veryfast", "tune": "fastdecode", "x264-params": "mbtree=0"},
    "superfast": {"preset": "superfast", "x264-params": "mbtree=0"},
    "superfast, tune fastdecode": {"preset": "superfast", "tune": "fastdecode", "x264-params": "mbtree=0"},
}
"""x264 settings compared by `--family x264`, each at the build's crf; mbtree stays off (with it
the bytes differed between identical runs)."""


# ---------------------------------------------------------------- floors and references

def mel(raw: Path, cid: str) -> None:
    f = Features(cid)
    step_mel(raw, f)


def floor_2d(raw: Path, ids: list[str]) -> None:
    """Middle frame by seeking, audio and mel, one MTCNN call per FACE_BATCH frames."""
    for start in range(0, len(ids), FACE_BATCH):
        frames = []
        for cid in ids[start:start + FACE_BATCH]:
            frames.append(media.read_middle_frame(raw / f"VideoFlash/{cid}.flv", cid)[0])
            mel(raw, cid)
        detect_faces(frames, device="cpu")


def mtcnn_batches(raw: Path, ids: list[str], rounds: int, device: str) -> list[tuple]:
    """MTCNN per frame at the batch sizes the builds use: 5 (one clip's --face-crop keyframes),
    16 (the 2D middle frames) and 80 (16 clips' keyframes), over the same 80 full-size frames."""
    frames = []
    for cid in ids[:16]:
        planes = media.read_all_frames(raw / f"VideoFlash/{cid}.flv", cid)[0]
        frames += [planes[i] for i in np.linspace(0, len(planes) - 1, 5).round().astype(int)]
    detect_faces(frames[:5], device=device)  # the model loaded, kernels warm
    sizes = (5, 16, 80)
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(rounds):
        for n in sizes[r % 3:] + sizes[: r % 3]:
            c0, w0 = cpu_seconds(), time.perf_counter()
            for i in range(0, len(frames), n):
                detect_faces(frames[i:i + n], device=device)
            cpu[n].append((cpu_seconds() - c0) * 1000 / len(frames))
            wall[n].append((time.perf_counter() - w0) * 1000 / len(frames))
    base = statistics.median(wall[5])
    return [(str(n), f"{statistics.median(cpu[n]):.1f}", f"{statistics.median(wall[n]):.1f}",
             f"{1000 / statistics.median(wall[n]):.1f}", f"{statistics.median(wall[n]) / base:.2f}x") for n in sizes]


def decode_only_3d(raw: Path, ids: list[str]) -> None:
    for cid in ids:
        media.read_all_frames(raw / f"VideoFlash/{cid}.flv", cid, pixel_format="yuv420p")  # native format
        media.read_wav(raw / f"AudioWAV/{cid}.wav", cid)


def ffmpeg_pipeline(path: Path, scale: str = "224:224") -> bytes:
    """FFmpeg's own way to the 3D frames: decode, fps=24, scale, x264 with the build's settings, one thread.

    As `ffmpeg -i clip.flv -vf fps=24,scale=224:224 -c:v libx264 ... -threads 1 clip.mp4` would;
    the decoder's picture types are cleared, as the ffmpeg tool does (keeping them forces a key
    frame wherever the FLV has one).
    """
    import av

    buf = io.BytesIO()
    with av.open(str(path)) as src, av.open(buf, "w", format="mp4") as dst:
        video = src.streams.video[0]
        graph = av.filter.Graph()
        graph.threads = 1
        graph.link_nodes(graph.add_buffer(template=video), graph.add("fps", str(video3d.FPS)),
                         graph.add("scale", scale), graph.add("buffersink")).configure()
        out = dst.add_stream(video3d.CODEC["codec"], rate=video3d.FPS)
        out.width = out.height = video3d.SIZE
        out.pix_fmt = video3d.CODEC["pix_fmt"]
        out.codec_context.thread_count, out.codec_context.thread_type = 1, "NONE"
        out.options = {**{k: str(v) for k, v in video3d.CODEC.items() if k not in ("codec", "pix_fmt")}, "threads": "1"}
        n = 0

        def drain() -> None:
            nonlocal n
            while True:
                try:
                    frame = graph.vpull()
                except (av.BlockingIOError, av.EOFError):
                    return
                frame.pts, frame.time_base, frame.pict_type = n, Fraction(1, video3d.FPS), av.video.frame.PictureType.NONE
                n += 1
                dst.mux(out.encode(frame))

        for frame in src.decode(video):
            graph.vpush(frame)
            drain()
        graph.vpush(None)
        drain()
        dst.mux(out.encode())
    return buf.getvalue()


def ffmpeg_3d(raw: Path, ids: list[str], scale: str = "224:224") -> None:
    for cid in ids:
        ffmpeg_pipeline(raw / f"VideoFlash/{cid}.flv", scale)
        mel(raw, cid)


def build_case(raw: Path, out: Path, variants: list[str], workers: int, ids: list[str], face_crop: str = "") -> None:
    """face_crop: "" (none), "per clip" (MTCNN on the CPU in the workers, a clip per call: the CPU's
    way) or "batched" (16 clips per call on the build's device between two passes: the GPU's way)."""
    from crema_tools.builder import plan

    batched_on = plan.FACE_TRACK_BATCHED_ON
    plan.FACE_TRACK_BATCHED_ON = ("cpu", "cuda") if face_crop == "batched" else ()
    try:
        build(raw, out, variants, workers=workers, progress=False, clip_ids=ids, face_crop=bool(face_crop))
    finally:
        plan.FACE_TRACK_BATCHED_ON = batched_on


# ---------------------------------------------------------------- interleaved timing

def run_rounds(cases: dict, n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Each case once per round, the order rotated every round; medians of CPU and wall ms per clip."""
    names = list(cases)
    cpu: dict[str, list[float]] = {k: [] for k in names}
    wall: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, prepare = cases[name]
            if prepare:
                prepare()
            c0, w0 = cpu_seconds(), time.perf_counter()
            fn()
            cpu[name].append((cpu_seconds() - c0) * 1000 / n)
            wall[name].append((time.perf_counter() - w0) * 1000 / n)
    return {k: {"cpu": statistics.median(cpu[k]), "wall": statistics.median(wall[k]),
                "cpu_spread": max(cpu[k]) - min(cpu[k])} for k in names}


def fresh(path: Path):
    return lambda: shutil.rmtree(path, ignore_errors=True)


def shard_bytes(out: Path, variant: str) -> int:
    return sum(p.stat().st_size for p in (out / variant).glob("*.tar"))


def bench_family(fam: str, raw: Path, ids: list[str], workdir: Path, rounds: int, workers: list[int],
                 all_three: bool, face_crop: bool = False) -> list[tuple]:
    n = len(ids)
    if fam == "2d":
        floors = {"2D floor: middle frame + audio + mel + MTCNN per 16": (lambda: floor_2d(raw, ids), None)}
        families = [["2d-multimodal"]] + ([["2d-audio", "2d-vision", "2d-multimodal"]] if all_three else [])
    else:
        floors = {"3D floor: decode-only (every frame, audio)": (lambda: decode_only_3d(raw, ids), None),
                  "FFmpeg pipeline (fps, scale bicubic, x264) + mel": (lambda: ffmpeg_3d(raw, ids), None),
                  "FFmpeg pipeline (fps, scale bilinear, x264) + mel":
                      (lambda: ffmpeg_3d(raw, ids, "224:224:flags=bilinear+accurate_rnd+bitexact"), None)}
        families = [["3d-multimodal"]] + ([["3d-audio", "3d-vision", "3d-multimodal"]] if all_three else [])
    cases = dict(floors)
    outs = {}
    crops = ["", "per clip", "batched"] if face_crop and fam == "3d" else [""]
    for variants in families:
        for w in workers:
            for crop in crops:
                name = f"build {' + '.join(variants)}{f' --face-crop ({crop})' if crop else ''}, workers={w}"
                out = workdir / f"out-{fam}-{len(variants)}-{w}{'-face-' + crop.replace(' ', '-') if crop else ''}"
                outs[name] = (out, variants, crop)
                cases[name] = ((lambda o=out, v=variants, w=w, c=crop: build_case(raw, o, v, w, ids, c)), fresh(out))
    warm = ids[: min(4, n)]  # models loaded, caches warm, before anything is timed
    floor_2d(raw, warm) if fam == "2d" else (decode_only_3d(raw, warm), ffmpeg_3d(raw, warm))
    for out, variants, crop in outs.values():
        shutil.rmtree(out, ignore_errors=True)
        build_case(raw, out, variants, 0, warm, crop)
    res = run_rounds(cases, n, rounds)
    rows = []
    first_floor = next(iter(floors))
    for name, r in res.items():
        ratios = ", ".join(f"{r['cpu'] / res[f]['cpu']:.2f}x {label}" for f, label in
                           ((first_floor, "floor"),) + (((list(floors)[1], "FFmpeg bicubic"),
                                                         (list(floors)[2], "FFmpeg bilinear")) if fam == "3d" else ())
                           if name not in floors)
        size = ""
        if name in outs:
            out, variants, _ = outs[name]
            clips = FULL_CORPUS_CLIPS_3D if fam == "3d" else FULL_CORPUS_CLIPS
            size = ", ".join(f"{v} {clips * shard_bytes(out, v) / n / 1e9:.2f} GB" for v in variants)
        rows.append((name, f"{r['cpu']:.1f}", f"{r['cpu_spread']:.1f}", f"{r['wall']:.1f}", ratios or "-",
                     f"{(FULL_CORPUS_CLIPS if fam == '2d' else FULL_CORPUS_CLIPS_3D) * r['wall'] / 1000 / 60:.1f} min",
                     size or "-"))
    return rows


# ---------------------------------------------------------------- x264 settings

@contextmanager
def x264(settings: dict):
    saved = video3d.CODEC
    video3d.CODEC = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": saved["crf"], **settings}
    try:
        yield
    finally:
        video3d.CODEC = saved


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse)) if mse else float("inf")


def bench_x264(raw: Path, ids: list[str], rounds: int) -> list[tuple]:
    """Encode the build's own 24 fps 224x224 frames with each setting; decode them as the loader does."""
    from crema_tools.representations import LoadOptions
    from crema_tools.representations.clip3d import clip_tensor

    clips, mel_bytes = [], 0
    for cid in ids:
        planes, times, _ = media.read_all_frames(raw / f"VideoFlash/{cid}.flv", cid, pixel_format="yuv420p")
        picks = video3d.resample_times(times, video3d.source_fps(times))
        clips.append([video3d.crop_resize_yuv420(planes[p], (0, 0, planes[p].shape[1], planes[p].shape[0] * 2 // 3))
                      for p in picks])
        f = Features(cid)
        step_mel(raw, f)
        buf = io.BytesIO()
        np.save(buf, f["mel_db"].astype(np.float16), allow_pickle=False)
        mel_bytes += len(buf.getvalue())
    n = len(clips)
    blobs: dict[str, list[bytes]] = {}
    uint8, float32 = LoadOptions(dtype="uint8"), LoadOptions()

    def encode(name):
        with x264(X264[name]):
            out = [video3d.encode_frames(c) for c in clips]
        if name in blobs and blobs[name] != out:
            raise SystemExit(f"x264 {name}: bytes differ between identical runs")
        blobs[name] = out

    def load(name, opts):
        for blob, c, cid in zip(blobs[name], clips, ids):
            clip_tensor({"mp4": blob}, {"n_frames": len(c), "clip_id": cid}, opts)

    for name in X264:
        encode(name)  # blobs exist before any decode case runs
    cases = {}
    for name in X264:
        cases[f"encode {name}"] = (lambda k=name: encode(k), None)
        cases[f"decode {name}"] = (lambda k=name: [video3d.decode_yuv(b) for b in blobs[k]], None)
        cases[f"load uint8 {name}"] = (lambda k=name: load(k, uint8), None)
        cases[f"load float32 {name}"] = (lambda k=name: load(k, float32), None)
    res = run_rounds(cases, n, rounds)
    base = sum(map(len, blobs[next(iter(X264))]))
    rows = []
    for name in X264:
        size = sum(map(len, blobs[name]))
        quality = statistics.mean(psnr(video3d.decode_yuv(b), np.stack(c)) for b, c in zip(blobs[name], clips))
        video_gb = FULL_CORPUS_CLIPS_3D * size / n / 1e9
        rows.append((name, f"{size / n / 1e3:.1f}", f"{size / base:.2f}x", f"{video_gb:.2f} GB",
                     f"{video_gb + FULL_CORPUS_CLIPS_3D * mel_bytes / n / 1e9:.2f} GB", f"{quality:.2f}",
                     f"{res[f'encode {name}']['cpu']:.1f}", f"{res[f'decode {name}']['cpu']:.1f}",
                     f"{res[f'load uint8 {name}']['cpu']:.1f}", f"{res[f'load float32 {name}']['cpu']:.1f}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=4, help="synthetic actors (18 clips each)")
    ap.add_argument("--family", nargs="+", choices=["2d", "3d", "x264"], default=["2d", "3d"])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; figures are their medians")
    ap.add_argument("--workers", type=int, nargs="+", default=[0], help="worker settings to time")
    ap.add_argument("--all-three", action="store_true", help="also build the family's three configs in one pass")
    ap.add_argument("--face-crop", action="store_true", help="3D: also time each build with --face-crop, MTCNN per "
                    "clip in the workers (the CPU's way) and batched across clips between two passes (the GPU's)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads, for every case alike")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw, ids = corpus(args.workdir / "raw", args.actors)
    load_before = load_average()
    sections = []
    for fam in args.family:
        if fam == "x264":
            rows = bench_x264(raw, ids, args.rounds)
            sections.append(("x264 settings on the build's 24 fps 224x224 frames (crf "
                             f"{video3d.CODEC['crf']}); CPU ms per clip, medians of {args.rounds} interleaved rounds; "
                             f"corpus = {FULL_CORPUS_CLIPS_3D:,} clips",
                             table(rows, ("x264", "kB / clip", "size", "video, corpus", "3d-multimodal video + mel",
                                          "PSNR dB (YUV)", "encode", "decode (yuv)", "load uint8", "load float32"))))
        else:
            if fam == "3d" and args.face_crop:
                device = "cuda" if torch.cuda.is_available() else "cpu"
                sections.append((f"MTCNN per frame by batch size on {device} (480x360 frames, medians of {args.rounds} "
                                 "interleaved rounds)", table(mtcnn_batches(raw, ids, args.rounds, device),
                                                            ("frames per call", "CPU ms / frame", "wall ms / frame",
                                                             "frames/s", "wall vs 5 per call"))))
            rows = bench_family(fam, raw, ids, args.workdir, args.rounds, args.workers, args.all_three, args.face_crop)
            sections.append((f"{fam.upper()}: CPU and wall ms per clip, medians of {args.rounds} interleaved rounds",
                             table(rows, ("case", "CPU ms / clip", "CPU spread (max - min)", "wall ms / clip",
                                          "CPU vs floors", "full corpus, wall", "projected shards, full corpus"))))
    print(f"Machine: {machine()}; torch threads {args.threads}")
    print(f"Load average (1, 5, 15 min): before {load_before}, after {load_average()} on {os.cpu_count()} cores")
    print(f"Synthetic corpus: {len(ids)} clips ({args.actors} actors); video3d.CODEC {video3d.CODEC}; "
          f"resize {video3d.RESIZE}\n")
    for title, text in sections:
        print(f"{title}\n\n{text}\n")


if __name__ == "__main__":
    main()
