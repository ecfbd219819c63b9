"""Helpers the test files share: folder contents, subprocesses, shards, the loopback Hub's environment.

Imported as `from helpers import ...` (conftest.py puts tests/ on sys.path). Stdlib only at import time,
so that hubserver.py stays so too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

# --- folders ----------------------------------------------------------------------------------


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) by relative POSIX path, in path order, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- subprocesses -----------------------------------------------------------------------------


def run_python(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """Run this interpreter with `args` in a subprocess (`env`: its whole environment), capturing text output."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=check)


def run_cli(*args: str, module: str = "crema_tools.cli", cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args` (the crema-tools command line), capturing text output; `env` adds to os.environ."""
    return run_python("-m", module, *args, cwd=cwd, env={**os.environ, **env} if env else None, timeout=timeout)


# --- shards -----------------------------------------------------------------------------------


def shard_samples(folder: Path) -> list[tuple[str, dict[str, bytes]]]:
    """The (key, members) samples of every shard in `folder` (one variant's folder), shard by shard in name order."""
    from crema_tools.format.shards import read_shard

    return [s for tar in sorted(folder.glob("*.tar")) for s in read_shard(tar)]


def shard_metas(folder: Path) -> list[dict]:
    """The decoded `json` member of every sample in `folder`'s shards, in the order of `shard_samples`."""
    return [json.loads(m["json"]) for _, m in shard_samples(folder)]


def tar_members(shard: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member of the tar `shard`, in order, with its bytes."""
    with tarfile.open(shard) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def write_tar(shard: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """Write (header, bytes) pairs as the USTAR tar `shard`, each header's size set to its bytes' length."""
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


# --- the loopback Hub (hubserver.py) ----------------------------------------------------------


def hub_env(home: Path, endpoint: str | None = None, *, token: str | None = None, drop_tokens: bool = False,
            progress_bars: bool = True) -> dict[str, str]:
    """os.environ for a subprocess on the loopback Hub: own HF_HOME, no Xet/telemetry/proxy, the endpoint and token given."""
    env = {k: v for k, v in os.environ.items() if not (drop_tokens and k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"))}
    env.update({"HF_HOME": str(home), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "no_proxy": "127.0.0.1"})
    if not progress_bars:
        env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if endpoint is not None:
        env["HF_ENDPOINT"] = endpoint
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def push_then_predict(run: Path, repo_id: str, video: Path, env: dict[str, str], show: str = "") -> tuple[str, dict]:
    """`model_zoo.push` a training run to the (loopback) Hub in `env`, then in a fresh interpreter load it
    back by repo id and `predict` on `video`: (the model's class name and `show`'s value, probabilities)."""
    r = run_python("-m", "model_zoo.push", str(run), "--repo-id", repo_id, "--dataset-repo-id", "org/crema-d-sample",
                   env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    code = ("import model_zoo, json\nfrom model_zoo.predict import predict\n"
            f"m = model_zoo.from_pretrained({repo_id!r})\n"
            f"(p,) = predict(m, [{str(video)!r}])\n"
            f"print(json.dumps([' '.join([type(m).__name__, {show or repr('')}]).strip(), p.probabilities]))")
    r = run_python("-c", code, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    name, probabilities = json.loads(r.stdout.strip().splitlines()[-1])
    return name, probabilities
