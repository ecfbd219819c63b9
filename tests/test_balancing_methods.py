"""PMR and MMPareto: one step of ours equals one step of the authors' rule, reduced from their code.

References:
- PMR: fanyunfeng-bit/Modal-Imbalance-PMR, main_Prototype_grad.py at commit
  3615e48983555089b0e693380087617c3797a641 (`EU_dist`, `calculate_prototype`, `train_epoch` with
  `--modulation Proto`).
- MMPareto: GeWu-Lab/MMPareto_ICML2024, code/MMPareto.py (`train_epoch`) and code/min_norm_solvers.py
  (`MinNormSolver` for two tasks) at commit a339db39cc25b157df376b50bb894917dc6c01d6.

Their models return (a, v, out) from (spec, image); ours gives the same features and fused logits
(`model.features`, `model.fusion`), and the per-modality logits are OGM-GE's from the fusion head
(their `train_epoch` computes PMR's the same way; MMPareto's own model has separate unimodal heads,
stated in model_zoo/balancing/mmpareto.py). Their parameter names are audio_net / visual_net; ours
audio / vision, so their name tests read those.
"""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn

import model_zoo
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.config import ModelZooError

# ---------------------------------------------------------------- their code, reduced


def their_eu_dist(x1, x2):
    """PMR main_Prototype_grad.py EU_dist."""
    d_matrix = torch.zeros(x1.shape[0], x2.shape[0]).to(x1.device)
    for i in range(x1.shape[0]):
        for j in range(x2.shape[0]):
            d_matrix[i, j] = torch.sqrt(torch.dot((x1[i] - x2[j]), (x1[i] - x2[j])))
    return d_matrix


def their_calculate_prototype(model, dataloader, epoch, momentum_coef, n_classes, embed_dim, a_proto=None, v_proto=None):
    """PMR main_Prototype_grad.py calculate_prototype (CREMA-D branch: the first len // 10 batches)."""
    audio_prototypes = torch.zeros(n_classes, embed_dim)
    visual_prototypes = torch.zeros(n_classes, embed_dim)
    count_class = [0 for _ in range(n_classes)]
    model.eval()
    with torch.no_grad():
        sample_count = 0
        all_num = len(dataloader)
        for spec, image, label in dataloader:
            a, v = model.features({"audio": spec, "vision": image})
            for c, lab in enumerate(label):
                lab = lab.long()
                count_class[lab] += 1
                audio_prototypes[lab, :] += a[c, :]
                visual_prototypes[lab, :] += v[c, :]
            sample_count += 1
            if sample_count >= all_num // 10:
                break
    for c in range(audio_prototypes.shape[0]):
        audio_prototypes[c, :] /= count_class[c]
        visual_prototypes[c, :] /= count_class[c]
    if epoch > 0:
        audio_prototypes = (1 - momentum_coef) * audio_prototypes + momentum_coef * a_proto
        visual_prototypes = (1 - momentum_coef) * visual_prototypes + momentum_coef * v_proto
    return audio_prototypes, visual_prototypes


def their_pmr_step(model, spec, image, label, audio_proto, visual_proto, alpha, epoch, starts=0, ends=100):
    """PMR main_Prototype_grad.py train_epoch, one step with --modulation Proto, up to loss.backward()."""
    criterion, softmax = nn.CrossEntropyLoss(), nn.Softmax(dim=1)
    a, v = model.features({"audio": spec, "vision": image})
    out = model.fusion(a, v)
    audio_sim = -their_eu_dist(a, audio_proto)
    visual_sim = -their_eu_dist(v, visual_proto)
    if starts <= epoch <= ends:
        score_a_p = sum([softmax(audio_sim)[i][label[i]] for i in range(audio_sim.size(0))])
        score_v_p = sum([softmax(visual_sim)[i][label[i]] for i in range(visual_sim.size(0))])
        ratio_a_p = score_a_p / score_v_p
        if ratio_a_p > 1:
            beta, lam = 0, 1 * alpha
        elif ratio_a_p < 1:
            beta, lam = 1 * alpha, 0
        else:
            beta, lam = 0, 0
        loss = criterion(out, label) + beta * criterion(audio_sim, label) + lam * criterion(visual_sim, label)
    else:
        loss = criterion(out, label)
    loss.backward()
    return loss


def their_min_norm_element_from2(v1v1, v1v2, v2v2):
    """MMPareto min_norm_solvers.py MinNormSolver._min_norm_element_from2."""
    if v1v2 >= v1v1:
        return 0.999, v1v1
    if v1v2 >= v2v2:
        return 0.001, v2v2
    gamma = -1.0 * ((v1v2 - v2v2) / (v1v1 + v2v2 - 2 * v1v2))
    return gamma, v2v2 + gamma * (v1v2 - v2v2)


def their_find_min_norm_element(vecs):
    """MinNormSolver.find_min_norm_element for two tasks: _min_norm_2d's per-tensor dot products, then
    the analytical solution (`if n < 3: return sol_vec`)."""
    dps = {}
    for i, j in ((0, 1), (0, 0), (1, 1)):
        dps[(i, j)] = 0.0
        for k in range(len(vecs[i])):
            dps[(i, j)] += torch.mul(vecs[i][k], vecs[j][k]).sum().data.cpu()
    c, d = their_min_norm_element_from2(dps[(0, 0)], dps[(0, 1)], dps[(1, 1)])
    return [c, 1 - c], d


def their_mmpareto_step(model, out, out_a, out_v, label, gamma=1.5):
    """MMPareto.py train_epoch, one step up to optimizer.step(); `optimizer.zero_grad()` is model.zero_grad()."""
    criterion = nn.CrossEntropyLoss()
    record_names_audio, record_names_visual = [], []
    for name, param in model.named_parameters():
        if "head" in name:
            continue
        if "audio" in name:
            record_names_audio.append((name, param))
            continue
        if "vision" in name:
            record_names_visual.append((name, param))
    loss_mm, loss_a, loss_v = criterion(out, label), criterion(out_a, label), criterion(out_v, label)
    grads_audio, grads_visual = {}, {}
    for loss, loss_type in zip([loss_mm, loss_a, loss_v], ["both", "audio", "visual"]):
        loss.backward(retain_graph=True)
        if loss_type in ("both", "audio"):
            grads_audio[loss_type] = {n: p.grad.data.clone() for n, p in record_names_audio}
            grads_audio[loss_type]["concat"] = torch.cat([grads_audio[loss_type][n].flatten() for n, _ in record_names_audio])
        if loss_type in ("both", "visual"):
            grads_visual[loss_type] = {n: p.grad.data.clone() for n, p in record_names_visual}
            grads_visual[loss_type]["concat"] = torch.cat([grads_visual[loss_type][n].flatten() for n, _ in record_names_visual])
        model.zero_grad()
    cos_audio = torch.nn.functional.cosine_similarity(grads_audio["both"]["concat"], grads_audio["audio"]["concat"], dim=0)
    cos_visual = torch.nn.functional.cosine_similarity(grads_visual["both"]["concat"], grads_visual["visual"]["concat"], dim=0)
    audio_k = [0.5, 0.5] if cos_audio > 0 else their_find_min_norm_element(
        [[g for n, g in grads_audio[t].items() if n != "concat"] for t in ("both", "audio")])[0]
    visual_k = [0.5, 0.5] if cos_visual > 0 else their_find_min_norm_element(
        [[g for n, g in grads_visual[t].items() if n != "concat"] for t in ("both", "visual")])[0]
    loss = loss_mm + loss_a + loss_v
    loss.backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            layer = re.split("[_.]", str(name))
            if "head" in layer:
                continue
            for part, k, grads, own in (("audio", audio_k, grads_audio, "audio"), ("vision", visual_k, grads_visual, "visual")):
                if part in layer:
                    three_norm = torch.norm(param.grad.data.clone())
                    new_grad = 2 * k[0] * grads["both"][name] + 2 * k[1] * grads[own][name]
                    diff = three_norm / torch.norm(new_grad)
                    param.grad = diff * new_grad * gamma if diff > 1 else new_grad * gamma
    return float(cos_audio), float(cos_visual), float(audio_k[0]), float(visual_k[0])


# ---------------------------------------------------------------- the model and batches


def tiny_model(fusion="concat", seed=0):
    torch.manual_seed(seed)
    return model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion=fusion).train()


def batch(size, seed, labels=None):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.rand(size, 1, 64, 48, generator=g), "vision": torch.rand(size, 3, 1, 64, 64, generator=g),
            "label": labels if labels is not None else torch.randint(0, 6, (size,), generator=g)}


def close(ours, theirs, tol=1e-4):
    """Equal up to float32 rounding: the largest difference within `tol` of the reference's largest entry
    (their loops sum in another order: per sample, per tensor)."""
    return (ours - theirs).abs().max() <= tol * theirs.abs().max() + 1e-8


def sgd_step_equal(ours, theirs):
    for model in (ours, theirs):
        torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=1e-4).step()
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(ours.parameters(), theirs.parameters()))


def inputs(b):
    return {"audio": b["audio"], "vision": b["vision"]}


# ---------------------------------------------------------------- PMR


def test_pmr_prototypes_follow_their_epochs_and_momentum():
    """Before epoch k ours equals theirs after epoch k - 1: fresh before epochs 0 and 1, momentum from epoch 2."""
    model = tiny_model()
    loader = [batch(3, seed, torch.tensor([seed % 6, (seed + 1) % 6, (seed + 2) % 6])) for seed in range(40)]  # 4 read
    theirs_loader = [(b["audio"], b["vision"], b["label"]) for b in loader]
    method = get_method("pmr", momentum_coef=0.5)
    protos = None
    for epoch in range(3):
        method.start_epoch(StepContext(model, epoch, 0, torch.Generator(), train_loader=loader, model_input=inputs))
        assert model.training  # restored after the eval-mode pass
        protos = their_calculate_prototype(model, theirs_loader, max(epoch - 1, 0), 0.5, 6, 512, *(protos or (None, None)))
        model.train()  # theirs leaves the model in eval mode
        ours = method.state["prototypes"]
        assert torch.allclose(ours["audio"], protos[0], atol=1e-5) and torch.allclose(ours["vision"], protos[1], atol=1e-5)
        with torch.no_grad():  # the next epoch's model differs
            next(model.audio.parameters()).mul_(1.5)
            next(model.vision.parameters()).mul_(0.5)
    # the momentum made a difference: fresh prototypes of the last model differ from the blended ones
    fresh = their_calculate_prototype(model, theirs_loader, 0, 0.5, 6, 512)
    assert not torch.allclose(fresh[0], ours["audio"], atol=1e-3)


@pytest.mark.parametrize("leading", ["audio", "vision"])
def test_one_pmr_step_equals_their_train_epoch(leading):
    ours = tiny_model()
    theirs = copy.deepcopy(ours)
    loader = [batch(4, seed) for seed in range(10)]
    method = get_method("pmr", alpha=5.0)
    method.start_epoch(StepContext(ours, 0, 0, torch.Generator(), train_loader=loader, model_input=inputs))
    b = batch(4, 99, labels=torch.tensor([0, 1, 2, 3]))
    with torch.no_grad():  # the leading modality: prototypes near this batch's features, so its scores are higher
        features = dict(zip(("audio", "vision"), ours.features(inputs(b))))
        method.state["prototypes"][leading][:4] = features[leading] + 0.01
    proto_a, proto_v = (method.state["prototypes"][m].clone() for m in ("audio", "vision"))

    out = Outputs(*ours(inputs(b), return_parts=True), b["label"])
    loss = method.backward(out, StepContext(ours, epoch=0, step=0, generator=torch.Generator()))
    log = method.after_backward(out, StepContext(ours, epoch=0, step=0, generator=torch.Generator()))
    their_loss = their_pmr_step(theirs, b["audio"], b["vision"], b["label"], proto_a, proto_v, alpha=5.0, epoch=0)

    assert log["proto_audio" if leading == "vision" else "proto_vision"] == 5.0  # the trailing modality's term
    assert log["proto_audio" if leading == "audio" else "proto_vision"] == 0.0
    assert loss.item() == pytest.approx(their_loss.item(), rel=1e-5)
    assert loss.item() > torch.nn.functional.cross_entropy(out.logits, b["label"]).item() + 0.1  # the term is there
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert close(p.grad, q.grad), name
    assert sgd_step_equal(ours, theirs)


def test_pmr_outside_its_window_is_the_joint_loss():
    model = tiny_model()
    method = get_method("pmr", modulation_starts=0, modulation_ends=1)
    loader = [batch(2, seed) for seed in range(10)]
    method.start_epoch(StepContext(model, 2, 0, torch.Generator(), train_loader=loader, model_input=inputs))
    b = batch(2, 5)
    out = Outputs(*model(inputs(b), return_parts=True), b["label"])
    loss = method.backward(out, StepContext(model, epoch=2, step=0, generator=torch.Generator()))
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(out.logits, b["label"]).item())


# ---------------------------------------------------------------- MMPareto


@pytest.mark.parametrize("fusion, seed, agree", [("concat", 0, (True, True)), ("gated", 2, (False, True))])
def test_one_mmpareto_step_equals_their_train_epoch(fusion, seed, agree):
    """Both branches of their rule: encoders whose fused and unimodal gradients agree (weights 1/2), and the
    gated head's audio encoder at seed 2, where they conflict (the min-norm weights)."""
    ours = tiny_model(fusion, seed)
    theirs = copy.deepcopy(ours)
    b = batch(6, seed)
    out = Outputs(*ours(inputs(b), return_parts=True), b["label"])
    method = get_method("mmpareto")
    context = StepContext(ours, epoch=0, step=0, generator=torch.Generator())
    loss = method.backward(out, context)
    log = method.after_backward(out, context)

    logits, parts, _ = theirs(inputs(b), return_parts=True)
    cos_a, cos_v, k_a, k_v = their_mmpareto_step(theirs, logits, parts["audio"], parts["vision"], b["label"])
    assert (cos_a > 0, cos_v > 0) == agree
    assert (log["cos_audio"] > 0, log["cos_vision"] > 0) == agree
    # theirs: a float32 cosine over 11M entries (off by up to ~5e-3, even above 1); ours in float64
    assert (log["cos_audio"], log["cos_vision"]) == pytest.approx((cos_a, cos_v), abs=1e-2)
    assert (log["weight_audio"], log["weight_vision"]) == pytest.approx((k_a, k_v), rel=1e-4)
    assert all(k != 0.5 for k, a in zip((k_a, k_v), agree) if not a)
    assert loss.item() == pytest.approx(sum(torch.nn.functional.cross_entropy(x, b["label"]).item()
                                            for x in (logits, parts["audio"], parts["vision"])), rel=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert close(p.grad, q.grad), name
    assert sgd_step_equal(ours, theirs)


# ---------------------------------------------------------------- bad hyperparameters


@pytest.mark.parametrize("name, options, message", [
    ("pmr", {"alpha": 0}, "pmr: --alpha must be above 0, got 0"),
    ("pmr", {"momentum_coef": 1.0}, "--momentum-coef must be in [0, 1)"),
    ("pmr", {"prototype_fraction": 0.0}, "--prototype-fraction must be in (0, 1]"),
    ("pmr", {"modulation_starts": 5}, "--modulation-starts 5 is after the last epoch (3, counted from 0)"),
    ("mmpareto", {"gamma": -1.0}, "mmpareto: --gamma must be above 0, got -1.0"),
])
def test_bad_hyperparameters_are_one_line(name, options, message):
    with pytest.raises(ModelZooError) as error:
        get_method(name, **options).check(epochs=4)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("argv, message", [
    (["--method", "mmpareto", "--gamma", "0"], "mmpareto: --gamma must be above 0, got 0.0"),
    (["--method", "pmr", "--momentum-coef", "1"], "pmr: --momentum-coef must be in [0, 1)"),
    (["--method", "mmpareto", "--alpha", "1"], "mmpareto takes no --alpha (it takes --gamma)"),
])
def test_bad_flags_are_one_line_errors(argv, message, tmp_path, capsys):
    from model_zoo.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--model", "resnet18_separate", "--variant", "2d-multimodal", "--epochs", "2", *argv,
                    "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_flags_reach_the_method(tmp_path):
    from model_zoo.train import parse_args

    args = parse_args(["--model", "resnet18_separate", "--variant", "ogm-ge", "--method", "pmr", "--alpha", "3",
                       "--momentum-coef", "0.2", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert args.balancing.hyperparameters() == {"alpha": 3.0, "momentum_coef": 0.2, "prototype_fraction": 0.1,
                                                "modulation_starts": 0, "modulation_ends": 100}


# ---------------------------------------------------------------- several processes


TWO_ENCODERS = '''
import json, sys
import torch
from accelerate import Accelerator
from torch import nn
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.fusion import FusionHead


class Tiny(nn.Module):  # the separate-encoder interface: .audio, .vision, .fusion, return_parts
    def __init__(self):
        super().__init__()
        self.audio = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16))
        self.vision = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16))
        self.fusion = FusionHead("concat", 16, 6)

    def forward(self, x, return_parts=False):
        a, v = self.audio(x["audio"]), self.vision(x["vision"])
        logits = self.fusion(a, v)
        return (logits, self.fusion.unimodal_logits(a, v), {"audio": a, "vision": v}) if return_parts else logits


accelerator = Accelerator(cpu=True)
share = lambda b: {k: t.chunk(accelerator.num_processes)[accelerator.process_index] for k, t in b.items()}
parts = lambda b: {"audio": b["audio"], "vision": b["vision"]}
g = torch.Generator().manual_seed(1)
data = [{"audio": torch.randn(8, 8, generator=g), "vision": torch.randn(8, 12, generator=g),
         "label": torch.randint(0, 6, (8,), generator=g)} for _ in range(14)]
result = {}
for name, options in (("pmr", {"prototype_fraction": 0.5, "alpha": 2.0}), ("mmpareto", {})):
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    model, optimizer = accelerator.prepare(model, optimizer)
    method, logs = get_method(name, **options), []
    for step, b in enumerate(data[10:]):
        context = StepContext(accelerator.unwrap_model(model), 0, step, torch.Generator().manual_seed(step), accelerator,
                              [share(t) for t in data[:10]], parts)
        if step == 0:
            method.start_epoch(context)
        b = share(b)
        out = Outputs(*model(parts(b), return_parts=True), b["label"])
        method.backward(out, context)
        logs.append(method.after_backward(out, context))
        optimizer.step()
        optimizer.zero_grad()
    result[name] = {"logs": logs, "params": [p.detach().flatten().tolist() for p in accelerator.unwrap_model(model).parameters()]}
if accelerator.is_main_process:
    with open(sys.argv[1], "w") as f:
        json.dump({"processes": accelerator.num_processes, **result}, f)
'''


def test_two_processes_update_like_one(tmp_path):
    """PMR (prototypes and scores from all processes' batches) and MMPareto (its own gradients averaged over
    the processes, one DDP backward) on a tiny two-encoder model: 2 CPU processes with half the batch each
    make the same 4 updates as one process with the whole batch."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "two_encoders.py"
    script.write_text(TWO_ENCODERS)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    launcher = str(Path(sys.executable).with_name("accelerate"))
    runs = {"one": [sys.executable, str(script)],
            "two": [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]}
    results = {}
    for run, cmd in runs.items():
        r = subprocess.run([*cmd, str(tmp_path / f"{run}.json")], capture_output=True, text=True, timeout=600,
                           env={**env, "ACCELERATE_USE_CPU": "true"} if run == "two" else env)
        assert r.returncode == 0, r.stderr[-3000:]
        results[run] = json.loads((tmp_path / f"{run}.json").read_text())
    one, two = results["one"], results["two"]
    assert (one["processes"], two["processes"]) == (1, 2)
    for name in ("pmr", "mmpareto"):
        for a, b in zip(one[name]["logs"], two[name]["logs"]):
            assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6) for k in a), name
        for p, q in zip(one[name]["params"], two[name]["params"]):
            assert torch.allclose(torch.tensor(p), torch.tensor(q), atol=1e-5), name
    assert {log["proto_audio"] > 0 for log in one["pmr"]["logs"]} | {log["proto_vision"] > 0 for log in one["pmr"]["logs"]} == {True, False}
