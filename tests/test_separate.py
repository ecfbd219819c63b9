"""Separate encoders, OGM-GE's fusion heads and its gradient modulation, compared with OGM-GE's code.

The references below are reduced from GeWu-Lab/OGM-GE_CVPR2022 at commit 343dc1d:
models/backbone.py (their ResNet18), models/fusion_modules.py (the heads) and main.py
(`train_epoch`: the per-modality logits, the scores, the coefficients and the modulation loop).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import hub_env, push_then_predict
from hubserver import FakeHub
from test_train import _even_seed, metrics, run_module

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.train import main as train_main
from model_zoo.train import parse_args

# ---------------------------------------------------------------- their code, reduced


def their_resnet18_parameters(in_channels: int) -> int:
    """Parameters of OGM-GE's backbone.resnet18(modality): torchvision's BasicBlock ResNet [2, 2, 2, 2]
    without avgpool and fc, conv1 taking 1 (audio) or 3 (visual) channels."""
    from torch import nn

    def block(cin, cout, stride):
        layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
        if stride != 1 or cin != cout:
            layers += [nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)]
        return layers

    layers = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += block(cin, cout, stride) + block(cout, cout, 1)
        cin = cout
    return sum(p.numel() for p in nn.Sequential(*layers).parameters())


def their_fused(method, head, a, v):
    """fusion_modules.py's forward, x = audio, y = visual (x_film=True, x_gate=True as AVClassifier builds them)."""
    if method == "sum":
        return head.fc_x(a) + head.fc_y(v)
    if method == "concat":
        return head.fc_out(torch.cat((a, v), dim=1))
    if method == "film":
        gamma, beta = torch.split(head.fc(a), a.shape[1], 1)
        return head.fc_out(gamma * v + beta)
    return head.fc_out(torch.mul(torch.sigmoid(head.fc_x(a)), head.fc_y(v)))


def their_unimodal_logits(method, head, a, v):
    """main.py train_epoch: out_a, out_v from the fusion weights."""
    if method == "sum":
        return torch.mm(a, head.fc_x.weight.T) + head.fc_x.bias, torch.mm(v, head.fc_y.weight.T) + head.fc_y.bias
    size = head.fc_out.weight.size(1)
    return (torch.mm(a, head.fc_out.weight[:, : size // 2].T) + head.fc_out.bias / 2,
            torch.mm(v, head.fc_out.weight[:, size // 2:].T) + head.fc_out.bias / 2)


def their_modulation(model, out_a, out_v, label, alpha, modulation, epoch, starts, ends, generator):
    """main.py train_epoch after loss.backward(). Their parameter names start with `module.` (DataParallel)
    and the encoders are audio_net / visual_net; ours are audio / vision, so the name test reads those.
    Their noise comes from the global RNG; here from `generator` (the same draws as ours, seeded alike)."""
    softmax, relu, tanh = torch.nn.Softmax(dim=1), torch.nn.ReLU(inplace=True), torch.nn.Tanh()
    score_v = sum([softmax(out_v)[i][label[i]] for i in range(out_v.size(0))])
    score_a = sum([softmax(out_a)[i][label[i]] for i in range(out_a.size(0))])
    ratio_v = score_v / score_a
    ratio_a = 1 / ratio_v
    if ratio_v > 1:
        coeff_v = 1 - tanh(alpha * relu(ratio_v))
        coeff_a = 1
    else:
        coeff_a = 1 - tanh(alpha * relu(ratio_a))
        coeff_v = 1
    if starts <= epoch <= ends:
        for name, parms in model.named_parameters():
            layer = str(name).split(".")[0]
            for part, coeff in (("audio", coeff_a), ("vision", coeff_v)):
                if part in layer and len(parms.grad.size()) == 4:
                    if modulation == "OGM_GE":
                        parms.grad = parms.grad * coeff + torch.zeros_like(parms.grad).normal_(
                            0, parms.grad.std().item() + 1e-8, generator=generator)
                    elif modulation == "OGM":
                        parms.grad *= coeff
    return float(torch.as_tensor(coeff_a).detach()), float(torch.as_tensor(coeff_v).detach())


# ---------------------------------------------------------------- the models


def test_ogm_ge_baseline_has_their_parameter_count():
    model = model_zoo.create_model("resnet18_separate", variant="ogm-ge")
    theirs = their_resnet18_parameters(1) + their_resnet18_parameters(3) + (2 * 512 * 6 + 6)  # + ConcatFusion(1024, 6)
    assert model.num_parameters() == theirs == 22_352_902
    assert sum(p.numel() for p in model.audio.parameters()) == their_resnet18_parameters(1) == 11_170_240


@pytest.mark.parametrize("method", ["sum", "concat", "film", "gated"])
def test_fusion_heads_and_unimodal_logits_are_theirs(method):
    torch.manual_seed(0)
    model = model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion=method).eval()
    x = {"audio": torch.rand(3, 1, 64, 48), "vision": torch.rand(3, 3, 2, 64, 64)}
    with torch.no_grad():
        logits, parts, features = model(x, return_parts=True)
        a, v = model.features(x)
        assert torch.equal(features["audio"], a) and torch.equal(features["vision"], v)
        assert torch.allclose(logits, their_fused(method, model.fusion, a, v), atol=1e-6)
        if method in ("sum", "concat"):
            out_a, out_v = their_unimodal_logits(method, model.fusion, a, v)
            assert torch.allclose(parts["audio"], out_a, atol=1e-6) and torch.allclose(parts["vision"], out_v, atol=1e-6)
        else:  # theirs fails here (fc_out's halves do not fit the features); ours zeroes the other modality
            with pytest.raises(RuntimeError):
                their_unimodal_logits(method, model.fusion, a, v)
            assert torch.allclose(parts["audio"], model.fusion(a, torch.zeros_like(v)))
    # frames through the 2D encoder, features averaged over time: their pooling over T, H and W
    one = {"audio": x["audio"], "vision": x["vision"][:, :, :1].repeat(1, 1, 2, 1, 1)}
    with torch.no_grad():
        assert torch.allclose(model(one), model({**one, "vision": one["vision"][:, :, :1]}), atol=1e-5)


def test_the_paper_multimodal_input_splits_into_face_and_mel():
    torch.manual_seed(0)
    model = model_zoo.create_model("resnet18_separate", variant="2d-multimodal").eval()
    x = torch.rand(2, 3, 224, 448)
    with torch.no_grad():
        a, v = model.features(x)
        assert torch.equal(a, model.audio(x[..., 224:])) and torch.equal(v, model.vision(x[..., :224]))
    assert model.pretrained_cfg.input_size == (3, 224, 448)
    assert model.pretrained_cfg.load_options() == {"channels": 3, "dtype": "uint8"}


# ---------------------------------------------------------------- one step equals theirs


@pytest.mark.parametrize("dominant", ["vision", "audio"])
@pytest.mark.parametrize("modulation", ["OGM", "OGM_GE"])
def test_one_modulated_step_equals_ogm_ge_main(modulation, dominant):
    torch.manual_seed(0)
    ours = model_zoo.create_model("resnet18_separate", variant="ogm-ge").train()
    with torch.no_grad():  # the audio half of the head predicts uniformly: vision is dominant iff the labels are its argmax
        ours.fusion.fc_out.weight[:, :512] = 0
        ours.fusion.fc_out.bias.zero_()
    theirs = copy.deepcopy(ours)
    x = {"audio": torch.rand(4, 1, 64, 48), "vision": torch.rand(4, 3, 1, 64, 64)}
    with torch.no_grad():
        v_logits = ours(x, return_parts=True)[1]["vision"]  # (logits, per-modality logits, features)
    labels = v_logits.argmax(1) if dominant == "vision" else v_logits.argmin(1)
    alpha = 0.8

    out = Outputs(*ours(x, return_parts=True), labels)
    method = get_method("ogm-ge" if modulation == "OGM_GE" else "ogm", alpha=alpha)
    torch.nn.functional.cross_entropy(out.logits, labels).backward()
    coeffs = method.after_backward(out, StepContext(ours, epoch=0, step=0, generator=torch.Generator().manual_seed(7)))

    a, v = theirs.features(x)
    fused = their_fused("concat", theirs.fusion, a, v)
    out_a, out_v = their_unimodal_logits("concat", theirs.fusion, a, v)
    torch.nn.CrossEntropyLoss()(fused, labels).backward()
    their_coeffs = their_modulation(theirs, out_a, out_v, labels, alpha, modulation, 0, 0, 50, torch.Generator().manual_seed(7))

    assert (coeffs["coeff_audio"], coeffs["coeff_vision"]) == pytest.approx(their_coeffs, rel=1e-6)
    assert (their_coeffs[0] == 1) == (dominant == "vision") and min(their_coeffs) < 1
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7), name
    sgd = [torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4) for m in (ours, theirs)]
    for opt in sgd:
        opt.step()
    assert all(torch.allclose(p, q, atol=1e-7) for p, q in zip(ours.parameters(), theirs.parameters()))


def test_no_modulation_outside_the_epoch_window():
    torch.manual_seed(0)
    model = model_zoo.create_model("resnet18_separate", variant="ogm-ge").train()
    x = {"audio": torch.rand(2, 1, 32, 32), "vision": torch.rand(2, 3, 1, 32, 32)}
    out = Outputs(*model(x, return_parts=True), torch.tensor([0, 1]))
    torch.nn.functional.cross_entropy(out.logits, out.labels).backward()
    before = [p.grad.clone() for p in model.parameters()]
    get_method("ogm-ge", alpha=0.8, modulation_starts=1, modulation_ends=3).after_backward(
        out, StepContext(model, epoch=4, step=0, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(b, p.grad) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("argv, message", [
    (["--method", "ogm-ge", "--alpha", "0"], "ogm-ge: --alpha must be above 0, got 0.0"),
    (["--method", "ogm-ge", "--alpha", "-1"], "--alpha must be above 0"),
    (["--method", "ogm", "--modulation-starts", "5", "--modulation-ends", "2"], "the epoch window 5..2 is empty"),
    (["--method", "ogm", "--modulation-starts", "3"], "--modulation-starts 3 is after the last epoch (1, counted from 0)"),
    (["--method", "pareto"], "invalid choice: 'pareto'"),
    (["--alpha", "0.5"], "--alpha is a balancing method's; give --method too"),
    (["--method", "joint", "--alpha", "0.5"], "joint takes no --alpha"),
    (["--method", "ogm-ge", "--gradient-accumulation-steps", "2"], "use --gradient-accumulation-steps 1"),
    (["--method", "ogm-ge", "--model", "resnet18"], "--method ogm-ge balances separate encoders; resnet18 shares one"),
    (["--fusion", "sum", "--model", "resnet18"], "--fusion applies to separate-encoder models"),
    (["--model-option", "freeze"], "--model-option 'freeze': give NAME=VALUE"),
])
def test_bad_balancing_arguments_are_one_line(argv, message, tmp_path, capsys):
    base = ["--model", "resnet18_separate", "--variant", "2d-multimodal", "--epochs", "2"]
    with pytest.raises(SystemExit) as exit_:
        parse_args([*base, *argv, "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_model_options_reach_the_builder_and_bad_ones_are_one_line(tmp_path):
    from model_zoo.train import make_model

    common = ["--model", "resnet18_separate", "--variant", "2d-multimodal", "--data", str(tmp_path), "--out", str(tmp_path)]
    model = make_model(parse_args([*common, "--model-option", "audio_channels=1", "--fusion", "gated"]))
    assert model.audio.channels == 1 and model.vision.channels == 3 and model.fusion_method == "gated"
    with pytest.raises(model_zoo.config.ModelZooError, match="resnet18_separate does not take no_such"):
        make_model(parse_args([*common, "--model-option", "no_such=2"]))


def test_the_ogm_ge_recipes_are_their_defaults(tmp_path):
    args = parse_args(["--recipe", "resnet18_separate-ogm-ge-modulated", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (args.model, args.variant, args.batch_size, args.lr, args.epochs) == ("resnet18_separate", "ogm-ge", 64, 1e-3, 100)
    assert (args.optimizer, args.momentum, args.weight_decay, args.schedule, args.lr_decay_epochs) == ("sgd", 0.9, 1e-4, "step", 70)
    assert args.balancing.hyperparameters() == {"alpha": 0.8, "modulation_starts": 0, "modulation_ends": 50}
    assert parse_args(["--recipe", "resnet18_separate-ogm-ge-modulated", "--alpha", "0.3", "--data", str(tmp_path),
                       "--out", str(tmp_path)]).balancing.alpha == 0.3
    pmr = parse_args(["--recipe", "resnet18_separate-ogm-ge-pmr", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (pmr.fusion, pmr.lr, pmr.epochs, pmr.balancing.name, pmr.balancing.alpha) == ("sum", 5e-4, 130, "pmr", 5.0)
    pareto = parse_args(["--recipe", "resnet18_separate-ogm-ge-mmpareto", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (pareto.lr, pareto.epochs, pareto.lr_decay_epochs, pareto.balancing.gamma) == (2e-3, 50, 30, 1.5)
    agm = parse_args(["--recipe", "resnet18_separate-ogm-ge-agm", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (agm.fusion, agm.optimizer, agm.epochs, agm.lr_decay_epochs) == ("concat", "sgd", 1500, 70)
    assert agm.balancing.hyperparameters() == {"alpha": 1.5, "modulation_starts": 0, "modulation_ends": 1499}


# ---------------------------------------------------------------- several processes, the Hub, predict


@pytest.fixture(scope="module")
def multimodal(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("separate")
    build(corpus, out, ["2d-audio", "2d-multimodal"], progress=False)
    return out


def test_two_processes_modulate_like_one_then_push_and_predict(multimodal, corpus, tmp_path):
    """OGM-GE on separate ViTs (no BatchNorm: per-sample computations only): one process with batch 4 and
    two with batch 2 see the same global batches; the coefficients come from the global batch's scores
    and the noise from a generator seeded alike, so both make the same updates."""
    seed = str(_even_seed(multimodal))
    common = ["--model", "vit_separate", "--variant", "2d-multimodal", "--data", str(multimodal), "--epochs", "1",
              "--no-shuffle", "--seed", seed, "--lr", "1e-4", "--method", "ogm-ge", "--alpha", "0.8"]
    r = run_module("model_zoo.train", *common, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("model_zoo.train", *common, "--batch-size", "2", "--out", str(tmp_path / "two"), launch=2)
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert two["training"]["processes"] == 2 and one["training"]["global_batch"] == two["training"]["global_batch"]
    assert two["training"]["method"] == "ogm-ge" and two["training"]["method_options"]["alpha"] == 0.8
    assert [h["train_loss"] for h in one["history"]] == pytest.approx([h["train_loss"] for h in two["history"]], rel=1e-4)
    assert one["splits"]["test"]["predictions"] == two["splits"]["test"]["predictions"]
    test = two["splits"]["test"]
    assert set(test["modalities"]) == {"audio", "vision"} and set(test["ablation"]) == {"audio_blanked", "vision_blanked"}
    assert all(test["modalities"][m]["samples"] == test["samples"] for m in ("audio", "vision"))
    assert test["human"]["ratings"] == "multimodal"

    with FakeHub() as hub:
        env = hub_env(tmp_path / "home", hub.endpoint, token="hf_loopback_test_token_0123456789")
        name, probabilities = push_then_predict(tmp_path / "two", "org/vit-separate",
                                                corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv", env)
    assert name == "SeparateEncoders" and sum(probabilities.values()) == pytest.approx(1.0)
    assert crema_tools.load(multimodal, "2d-multimodal", "test").samples == test["samples"]


def test_report_shows_shared_and_separate_encoders_side_by_side_over_two_seeds(tmp_path):
    """The paper's question in the report: one ResNet18 over face | mel, or one per modality with concat
    fusion, two seeds each (the runs' metrics.json as training writes them; the training itself is
    tested above, and docs/model_zoo.md shows this report measured on the built-in sample)."""
    def run(model, seed, accuracy, audio=None):
        training = {"fusion": "concat", "method": None} if audio is not None else {"fusion": None, "method": None}
        test = {"samples": 36, "accuracy": accuracy, "uar": accuracy, "macro_f1": accuracy}
        if audio is not None:
            test["modalities"] = {"audio": {"samples": 36, "accuracy": audio}, "vision": {"samples": 36, "accuracy": 0.4}}
        folder = tmp_path / model / f"seed-{seed}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "model": model, "variant": "2d-multimodal", "protocol": "paper", "seed": 0, "source": "synthetic",
            "training_seed": seed, "training": training, "splits": {"test": test}}))

    run("resnet18", 0, 1.0), run("resnet18", 1, 0.9)
    run("resnet18_separate", 0, 0.8, audio=0.2), run("resnet18_separate", 1, 0.7, audio=0.3)
    r = run_module("model_zoo.report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["model"]: row for row in json.loads((tmp_path / "report" / "summary.json").read_text())["rows"]}
    assert rows["resnet18"]["runs"] == rows["resnet18_separate (concat)"]["runs"] == 2
    assert rows["resnet18_separate (concat)"]["modalities"]["audio"]["mean"] == pytest.approx(0.25)
    table = (tmp_path / "report" / "summary.md").read_text().split("### shared vs separate encoders")[1]
    (line,) = [row for row in table.splitlines() if row.startswith("| resnet18 ")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells == ["resnet18", "2d-multimodal", "paper", "0.950 ± 0.071 (2)", "concat", "0.750 ± 0.071 (2)",
                     "0.250 ± 0.071", "0.400 ± 0.000"]


@pytest.fixture(scope="module")
def ogm_ge_data(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ogm_ge_data")
    build(corpus, out, ["ogm-ge"], progress=False, protocol="ogm-ge")
    return out


def test_ogm_ge_baseline_trains_on_their_inputs_with_their_recipe(ogm_ge_data, corpus, tmp_path):
    """The recipe `resnet18_separate-ogm-ge-modulated` on the ogm-ge config (`layout="parts"`), shortened:
    SGD with momentum and OGM-GE's modulation, each modality's accuracy, then `predict` on a video."""
    from model_zoo.predict import predict

    train_main(["--recipe", "resnet18_separate-ogm-ge-modulated", "--data", str(ogm_ge_data), "--out",
                str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4", "--precise-bn-batches", "1"])
    m = metrics(tmp_path / "run")
    assert (m["training"]["optimizer"], m["training"]["schedule"], m["training"]["method"]) == ("sgd", "step", "ogm-ge")
    assert m["training"]["method_options"] == {"alpha": 0.8, "modulation_starts": 0, "modulation_ends": 50}
    assert m["data"]["load_options"] == {"layout": "parts"}
    test = m["splits"]["test"]
    assert test["samples"] == crema_tools.load(ogm_ge_data, "ogm-ge", "test").samples > 0
    assert {part: test["modalities"][part]["samples"] for part in ("audio", "vision")} == {"audio": test["samples"],
                                                                                         "vision": test["samples"]}
    model = model_zoo.from_pretrained(tmp_path / "run")
    (p,) = predict(model, [corpus / "VideoFlash" / "1001_DFA_ANG_XX.flv"])
    assert p.error is None and sum(p.probabilities.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["agm", "mla"])
def test_a_resumed_run_goes_on_with_the_methods_running_state(method, ogm_ge_data, tmp_path):
    """AGM's running scores and MLA's projector, through the trainer: saved in every checkpoint, and a run
    resumed after its first step ends with the same state, over as many steps, as the run not interrupted."""
    import shutil

    def method_state(run, checkpoint):  # TrainState is the second object registered for checkpointing
        return torch.load(run / "checkpoints" / checkpoint / "custom_checkpoint_1.pkl", weights_only=True)["method_state"]

    common = ["--recipe", "resnet18_separate-ogm-ge", "--method", method, "--data", str(ogm_ge_data), "--epochs", "1",
              "--batch-size", "8", "--precise-bn-batches", "1", "--no-shuffle", "--checkpointing-steps", "1"]
    train_main([*common, "--out", str(tmp_path / "whole")])
    m = metrics(tmp_path / "whole")
    assert m["training"]["method"] == method
    first, last = method_state(tmp_path / "whole", "step_1"), method_state(tmp_path / "whole", "epoch_1")
    if method == "agm":
        assert m["training"]["method_options"]["alpha"] == 1.5
        assert first["steps"] == 1 and last["steps"] > 1
        assert all(0 < score < 20 for score in last["running_scores"])
    else:  # two updates a batch, the first without projection
        assert m["training"]["fusion"] == "shared" and first["updates"] == 2 and last["updates"] > 2
        assert last["projector"].shape == (512, 512) and not torch.allclose(first["projector"], last["projector"])

    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copytree(tmp_path / "whole" / "checkpoints" / "step_1", tmp_path / "resumed" / "checkpoints" / "step_1")
    train_main([*common, "--out", str(tmp_path / "resumed"), "--resume-from", "latest"])
    resumed = method_state(tmp_path / "resumed", "epoch_1")
    assert resumed.keys() == last.keys()
    for key, value in last.items():
        if isinstance(value, torch.Tensor):
            assert torch.allclose(resumed[key], value, atol=1e-5), key
        else:
            assert resumed[key] == pytest.approx(value, rel=1e-4), key


def test_the_comparison_runs_what_is_missing_and_reports_methods_side_by_side(ogm_ge_data, tmp_path, capsys):
    from model_zoo.compare import main as compare

    done = tmp_path / "balance" / "joint" / "seed-0"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({
        "model": "resnet18_separate", "variant": "ogm-ge", "protocol": "ogm-ge", "source": "synthetic", "training_seed": 0,
        "training": {"fusion": "concat", "method": "joint"},
        "splits": {"test": {"samples": 2, "accuracy": 0.5, "uar": 0.5, "macro_f1": 0.4,
                            "modalities": {"audio": {"samples": 2, "accuracy": 0.5}, "vision": {"samples": 2, "accuracy": 0.0}}}}}))
    argv = ["--data", str(ogm_ge_data), "--out", str(tmp_path / "balance"), "--methods", "joint", "ogm-ge", "--seeds", "0",
            "--epochs", "1", "--batch-size", "8", "--precise-bn-batches", "1"]
    compare(argv)
    out = capsys.readouterr().out
    assert "[1/2] joint, seed 0: done" in out and "[2/2] ogm-ge, seed 0 ->" in out
    trained = metrics(tmp_path / "balance" / "ogm-ge" / "seed-0")
    assert trained["training"]["method"] == "ogm-ge" and trained["training"]["optimizer"] == "sgd"
    assert trained["training"]["validation"].startswith("held-out 10% of train")  # never the test set
    table = (tmp_path / "balance" / "report" / "summary.md").read_text().split("### balancing methods")[1]
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
             if line.startswith("| joint") or line.startswith("| ogm-ge")}
    assert lines["joint"][5:] == ["0.500", "0.400", "0.500", "0.000", "0.500", "1"]
    assert lines["ogm-ge"][10] == "1" and lines["ogm-ge"][1:3] == ["resnet18_separate", "concat"]
    compare(argv)  # everything done: nothing is trained again
    assert "[2/2] ogm-ge, seed 0: done" in capsys.readouterr().out


def test_the_comparison_checks_every_method_before_training_any(tmp_path, capsys):
    """A method refusing the settings (ReconBoost: 2 epochs never reach its vision stage) stops the command
    in one line before the first run trains, not hours later."""
    from model_zoo.compare import main as compare

    with pytest.raises(SystemExit):
        compare(["--data", str(tmp_path), "--out", str(tmp_path / "balance"), "--methods", "joint", "reconboost",
                 "--seeds", "0", "--epochs", "2"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reconboost: 2 epochs never reach the vision stage" in err, err
    assert not (tmp_path / "balance" / "joint").exists()
