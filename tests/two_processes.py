"""Several processes make the update one makes: a balancing method trained on a tiny two-encoder model by
one process with the whole batch, and by 2 CPU processes under `accelerate launch` with half each.

One script, one loop, every method: the runs' settings come as JSON (the method, its options and a state to start
from, the fusion head, the weight decay, which batches the method's `start_epoch` sees as the training
loader, which it steps on, for how many epochs), and it writes each step's log, the method's state asked
for and the final parameters. The loop is the training
loop's (model_zoo/train.py) reduced: `start_epoch` at each epoch's first step, `backward`,
`after_backward`, the optimizer's step.

    one, two = one_and_two_processes(tmp_path, {"pmr": {"method": "pmr", "options": {"alpha": 2.0}}})
    assert_same_updates(one["pmr"], two["pmr"])
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = '''
import json, os, sys
import torch
from accelerate import Accelerator
from torch import nn
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.fusion import FusionHead


class Tiny(nn.Module):  # the separate-encoder interface: .audio, .vision, .fusion, split, encode, return_parts
    def __init__(self, fusion):
        super().__init__()
        self.audio = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16))
        self.vision = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16))
        self.fusion = FusionHead(fusion, 16, 6)

    def split(self, x):
        return x["audio"], x["vision"]

    def encode(self, modality, part):
        return getattr(self, modality)(part)

    def forward(self, x, return_parts=False):
        a, v = self.audio(x["audio"]), self.vision(x["vision"])
        logits = self.fusion(a, v)
        return (logits, self.fusion.unimodal_logits(a, v), {"audio": a, "vision": v}) if return_parts else logits


accelerator = Accelerator(cpu=True)
share = lambda b: {k: t.chunk(accelerator.num_processes)[accelerator.process_index] for k, t in b.items()}
parts = lambda b: {"audio": b["audio"], "vision": b["vision"]}
g = torch.Generator().manual_seed(1)
data = [{"audio": torch.randn(8, 8, generator=g), "vision": torch.randn(8, 12, generator=g),
         "label": torch.randint(0, 6, (8,), generator=g)} for _ in range(16)]
results = {"processes": accelerator.num_processes}
for name, run in json.load(open(sys.argv[1])).items():
    torch.manual_seed(0)
    model = Tiny(run.get("fusion", "concat"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=run.get("weight_decay", 0.0))
    model, optimizer = accelerator.prepare(model, optimizer)
    method, logs, step = get_method(run["method"], **run.get("options", {})), [], 0
    method.restore_state(run.get("restore", {}))  # e.g. AGM's running scores, to start far from 1
    loader = [share(b) for b in data[slice(*run.get("loader", (0, 2)))]]
    for epoch in range(run.get("epochs", 1)):
        for i, b in enumerate(data[slice(*run.get("steps", (0, 2)))]):
            context = StepContext(accelerator.unwrap_model(model), epoch, step, torch.Generator().manual_seed(step),
                                  accelerator, loader, parts, optimizer)
            if i == 0:
                method.start_epoch(context)
            b = share(b)
            out = Outputs(*model(parts(b), return_parts=True), b["label"], parts(b))
            method.backward(out, context)
            logs.append(method.after_backward(out, context))
            optimizer.step()
            optimizer.zero_grad()
            step += 1
    results[name] = {"logs": logs, "state": {k: method.state[k].tolist() for k in run.get("state", ())},
                     "params": [p.detach().flatten().tolist() for p in accelerator.unwrap_model(model).parameters()]}
if accelerator.is_main_process:
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
accelerator.wait_for_everyone()
os._exit(0)  # no interpreter teardown: gloo's sometimes aborts a process there, after the work is done
'''


def one_and_two_processes(tmp_path: Path, runs: dict[str, dict]) -> tuple[dict, dict]:
    """The results of `runs` (name -> settings) from one process and from two."""
    script, settings = tmp_path / "two_encoders.py", tmp_path / "runs.json"
    script.write_text(SCRIPT)
    settings.write_text(json.dumps(runs))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    launcher = str(Path(sys.executable).with_name("accelerate"))
    commands = {"one": [sys.executable, str(script)],
                "two": [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                        "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]}
    results = {}
    for name, command in commands.items():
        out = tmp_path / f"{name}.json"
        r = subprocess.run([*command, str(settings), str(out)], capture_output=True, text=True, timeout=600,
                           env={**env, "ACCELERATE_USE_CPU": "true"} if name == "two" else env)
        assert r.returncode == 0, r.stderr[-3000:]
        results[name] = json.loads(out.read_text())
    assert (results["one"]["processes"], results["two"]["processes"]) == (1, 2)
    return results["one"], results["two"]


def assert_same_updates(one: dict, two: dict) -> None:
    """The same logs (coefficients, weights) at every step, the same state and parameters at the end."""
    assert len(one["logs"]) == len(two["logs"]) > 0
    for a, b in zip(one["logs"], two["logs"]):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6) for k in a)
    for key in one["state"]:
        assert torch.allclose(torch.tensor(one["state"][key]), torch.tensor(two["state"][key]), atol=1e-5), key
    for p, q in zip(one["params"], two["params"]):
        assert torch.allclose(torch.tensor(p), torch.tensor(q), atol=1e-5)
