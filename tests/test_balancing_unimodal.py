"""The unimodal runs (`--method audio-only`, `--method vision-only`): each modality's encoder trained alone.

Reference: GeWu-Lab/BalanceBenchmark, balancemm/trainer/unimodal_trainer.py at commit
4c1482fca5aaa8d4278af8e26020daa039e3ccf3 (`training_step`: the cross-entropy of a one-modality model's
output, backward, the optimizer's step). Reduced here: that modality's encoder with its own linear head,
trained alone. Ours keeps the two-encoder model; with `sum` fusion a modality's logits are exactly its
encoder and its own head, so one step of ours must equal one step of the model alone, and the other
encoder must not move.
"""

from __future__ import annotations

import copy

import pytest
import torch
from accelerate.utils import set_seed
from test_train import metrics, run_module

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.report import methods_table, summarise


def their_unimodal_step(encoder, head, inputs, label, optimizer):
    """unimodal_trainer.training_step on a one-modality model, then the optimizer's step."""
    optimizer.zero_grad()
    loss = torch.nn.CrossEntropyLoss()(head(encoder(inputs)), label)
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("modality", ["audio", "vision"])
def test_one_step_equals_training_that_modality_alone(modality):
    torch.manual_seed(0)
    ours = model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion="sum").train()
    other = "vision" if modality == "audio" else "audio"
    head = {"audio": ours.fusion.fc_x, "vision": ours.fusion.fc_y}[modality]
    alone_encoder, alone_head = copy.deepcopy(getattr(ours, modality)), copy.deepcopy(head)
    untouched = copy.deepcopy(getattr(ours, other).state_dict())
    g = torch.Generator().manual_seed(3)
    batch = {"audio": torch.rand(4, 1, 64, 48, generator=g), "vision": torch.rand(4, 3, 1, 64, 64, generator=g),
             "label": torch.randint(0, 6, (4,), generator=g)}
    sgd = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)  # weight decay: a parameter with a zero gradient would move

    optimizer = torch.optim.SGD(ours.parameters(), **sgd)
    method = get_method(f"{modality}-only")
    out = Outputs(*ours({"audio": batch["audio"], "vision": batch["vision"]}, return_parts=True), batch["label"])
    loss = method.backward(out, StepContext(ours, 0, 0, torch.Generator()))
    method.after_backward(out, StepContext(ours, 0, 0, torch.Generator()))
    optimizer.step()

    inputs = batch[modality] if modality == "audio" else batch["vision"][:, :, 0]  # one frame: the 2D encoder's input
    theirs = their_unimodal_step(alone_encoder, alone_head, inputs, batch["label"],
                                 torch.optim.SGD([*alone_encoder.parameters(), *alone_head.parameters()], **sgd))
    assert loss.item() == pytest.approx(theirs.item(), rel=1e-6)
    for mine, reference in ((getattr(ours, modality), alone_encoder), (head, alone_head)):
        for (name, p), q in zip(mine.named_parameters(), reference.parameters()):
            assert torch.allclose(p, q, atol=1e-6), name
    assert all(torch.equal(v, untouched[k]) for k, v in getattr(ours, other).state_dict().items()
               if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert method.judged_on == modality


def unimodal_metrics(method, seed, fused, audio, vision):
    return {"model": "resnet18_separate", "variant": "ogm-ge", "protocol": "ogm-ge", "source": "synthetic",
            "training_seed": seed,
            "training": {"fusion": "concat", "method": method, "judged_on": "audio" if method == "audio-only" else None},
            "splits": {"test": {"samples": 4, "accuracy": fused, "uar": fused, "macro_f1": fused,
                                "modalities": {"audio": {"samples": 4, "accuracy": audio, "uar": audio, "macro_f1": audio},
                                               "vision": {"samples": 4, "accuracy": vision, "uar": vision, "macro_f1": vision}}}}}


def test_the_report_reads_a_unimodal_run_by_its_own_modality():
    """Its fused logits hold an untrained half: the row shows the trained modality's scores, no imbalance."""
    rows = summarise([unimodal_metrics("audio-only", 0, 0.25, 0.5, 0.0), unimodal_metrics("audio-only", 1, 0.0, 0.75, 0.25),
                      unimodal_metrics("joint", 0, 0.5, 0.5, 0.25)])
    audio_only = next(r for r in rows if r["method"] == "audio-only")
    assert audio_only["accuracy"]["mean"] == pytest.approx(0.625) and audio_only["macro_f1"]["n"] == 2
    table = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
             for line in methods_table(rows).splitlines() if line.startswith("| audio-only") or line.startswith("| joint")}
    assert table["audio-only"][5] == "0.625 ± 0.177" and table["audio-only"][7:11] == ["0.625 ± 0.177", "-", "-", "2"]
    assert table["joint"][5] == "0.500" and table["joint"][9] == "0.250"


@pytest.fixture(scope="module")
def ogm_ge_data(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("unimodal_ogm_ge")
    build(corpus, out, ["ogm-ge"], progress=False, protocol="ogm-ge")
    return out


def test_an_audio_only_run_trains_on_two_processes_and_is_selected_by_its_audio_logits(ogm_ge_data, tmp_path):
    """Under DDP every parameter must take part in the backward pass: the vision logits join the loss with
    weight 0, then their gradients are dropped. Evaluated with each modality's accuracy and the raters' row."""
    r = run_module("model_zoo.train", "--recipe", "resnet18_separate-ogm-ge", "--method", "audio-only", "--data",
                   str(ogm_ge_data), "--epochs", "1", "--batch-size", "4", "--precise-bn-batches", "1", "--seed", "0",
                   "--out", str(tmp_path / "run"), launch=2)
    assert r.returncode == 0, r.stderr[-3000:]
    m = metrics(tmp_path / "run")
    assert m["training"]["processes"] == 2 and m["training"]["method"] == "audio-only"
    assert m["training"]["selection"] == "best validation UAR of the audio logits" and m["training"]["judged_on"] == "audio"
    assert m["history"][0]["val_uar"] == m["splits"]["validation"]["modalities"]["audio"]["uar"]
    test = m["splits"]["test"]
    assert test["samples"] == crema_tools.load(ogm_ge_data, "ogm-ge", "test").samples
    assert test["modalities"]["audio"]["samples"] == test["samples"] and test["human"]["ratings"] == "voice"
    card = (tmp_path / "run" / "README.md").read_text()
    assert "Scores of the audio encoder's own logits" in card
    (test_row,) = [line for line in card.splitlines() if line.startswith("| test ")]
    assert test_row.split("|")[3].strip() == f"{100 * test['modalities']['audio']['accuracy']:.1f}%"
    set_seed(0)  # the run's initial weights: the vision encoder never moved from them
    initial = model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion="concat").vision.state_dict()
    trained = model_zoo.from_pretrained(tmp_path / "run")
    assert all(torch.equal(v, initial[k]) for k, v in trained.vision.state_dict().items() if k.endswith(("weight", "bias")))
    assert not torch.equal(trained.audio.state_dict()["net.conv1.weight"], set_seed(0) or model_zoo.create_model(
        "resnet18_separate", variant="ogm-ge").audio.state_dict()["net.conv1.weight"])
