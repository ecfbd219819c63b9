"""Shared helpers of the benchmarks: the machine's name and a synthetic corpus to measure on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from crema_tools.synthetic import generate_corpus, sample_clip_ids
from crema_tools.tables import markdown_table

FULL_CORPUS_CLIPS = 7442
FULL_CORPUS_CLIPS_3D = 7439
"""Clips with usable video: the 3D configs' full corpus."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (build workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to say how busy the machine was."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def corpus(root: Path, n_actors: int) -> tuple[Path, list[str]]:
    """The built-in sample's design over `n_actors` actors (18 clips each), generated once."""
    ids = sample_clip_ids(actors=tuple(range(1001, 1001 + n_actors)))
    marker = root / f"clips-{len(ids)}.txt"
    if not marker.exists():
        generate_corpus(root, ids, progress=True)
        marker.write_text("\n".join(ids))
    return root, ids


def table(rows: list[tuple], header: tuple) -> str:
    return markdown_table(header, rows)
