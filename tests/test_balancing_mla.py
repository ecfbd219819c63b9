"""MLA: two batches of ours equal two batches of the authors' rule, reduced from their code.

References:
- Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation at commit
  ab6c184579f9ff390e9c9b8216c9900c2a43545b: main.py `train_epoch` (the `gs_flag` branch: audio, then
  visual, each through `fusion_module.fc_out`, backward, `gs_plugin.before_update`, step, zero_grad),
  utils/utils.py `GSPlugin`, models/basic_model.py `AVClassifier` (with `--gs_flag`:
  `ConcatFusion(input_dim=512)`, one 512 -> classes head read by both modalities).
- GeWu-Lab/BalanceBenchmark at commit 4c1482fca5aaa8d4278af8e26020daa039e3ccf3:
  balancemm/models/avclassify_model.py `BaseClassifierMLAModel.calculate_entropy` /
  `calculate_gating_weights` (the dynamic fusion per sample; the authors' main.py takes its softmax
  over the batch dimension instead, stated in model_zoo/fusion.py).

Their `GSPlugin.before_update` projects the parameter named "module.weight"; given the bare
`fc_out`, as their loop does, it finds only "weight" and never projects. The reference below hands
it `fc_out` inside a container named `module` (as a DataParallel-wrapped head would be), so the
plugin runs; `test_their_released_loop_never_projects` shows the other. One line of the plugin is
changed, marked there: its denominator `alpha + torch.mm(k, r)` is a (d, d) outer product that
divides elementwise (and can cross zero); ours and the reference divide by OWM's scalar
`alpha + r k`, which makes P r = 0 up to alpha: the projection the plugin stands for.
Under torch >= 2 their `optimizer.zero_grad()` sets gradients to None, so their idle encoder is
skipped by the step, as ours is (under their pinned torch 1.8.1 it got zeros, stated in mla.py).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import model_zoo
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.config import ModelZooError

# ---------------------------------------------------------------- their code, reduced


class TheirGSPlugin:
    """utils/utils.py GSPlugin (on the CPU, 512 features)."""

    def __init__(self, features=512):
        self.Pl = torch.eye(features)
        self.exp_count = 0

    def before_update(self, model, before_batch_input, batch_index, len_dataloader, train_exp_counter):
        lamda = batch_index / len_dataloader + 1
        alpha = 1.0 * 0.1 ** lamda
        if train_exp_counter != 0:
            for n, w in model.named_parameters():
                if n == "module.weight":
                    r = torch.mean(before_batch_input, 0, True)
                    k = torch.mm(self.Pl, torch.t(r))
                    # theirs: torch.mm(k, r), a (d, d) outer product dividing elementwise; OWM's scalar r k here
                    self.Pl = torch.sub(self.Pl, torch.mm(k, torch.t(k)) / (alpha + torch.mm(r, k)))
                    pnorm2 = torch.norm(self.Pl.data, p="fro")
                    self.Pl.data = self.Pl.data / pnorm2
                    w.grad.data = torch.mm(w.grad.data, torch.t(self.Pl.data))


def their_mla_batch(model, optimizer, gs_plugin, plugin_head, spec, image, label, batch_step, len_dataloader):
    """main.py train_epoch, one batch of the gs_flag branch (two modalities)."""
    criterion = nn.CrossEntropyLoss()
    optimizer.zero_grad()
    a, v = model.features({"audio": spec, "vision": image})
    out_a = model.fusion.fc_out(a)
    loss_a = criterion(out_a, label)
    loss_a.backward()
    gs_plugin.before_update(plugin_head, a, batch_step, len_dataloader, gs_plugin.exp_count)
    optimizer.step()
    optimizer.zero_grad()
    gs_plugin.exp_count += 1
    out_v = model.fusion.fc_out(v)
    loss_v = criterion(out_v, label)
    loss_v.backward()
    gs_plugin.before_update(plugin_head, v, batch_step, len_dataloader, gs_plugin.exp_count)
    optimizer.step()
    optimizer.zero_grad()
    gs_plugin.exp_count += 1
    for _, p in model.named_parameters():
        if p.grad is not None:
            del p.grad
    return loss_a.item(), loss_v.item()


def their_gating_weights(out_a, out_v):
    """BalanceBenchmark BaseClassifierMLAModel.calculate_gating_weights with calculate_entropy (per sample)."""
    def entropy(output):
        probabilities = torch.softmax(output, dim=1)
        return -torch.sum(probabilities * torch.log(probabilities), dim=1, keepdim=True)

    e_a, e_v = entropy(out_a), entropy(out_v)
    max_entropy = torch.max(e_a, e_v)
    w_a, w_v = torch.exp(max_entropy - e_a), torch.exp(max_entropy - e_v)
    return w_a / (w_a + w_v), w_v / (w_a + w_v)


# ---------------------------------------------------------------- the model and batches


def tiny_model(fusion="shared", seed=0):
    torch.manual_seed(seed)
    return model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion=fusion).train()


def batch(size, seed):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.rand(size, 1, 64, 48, generator=g), "vision": torch.rand(size, 3, 1, 64, 64, generator=g),
            "label": torch.randint(0, 6, (size,), generator=g)}


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)


def inputs(b):
    return {"audio": b["audio"], "vision": b["vision"]}


# ---------------------------------------------------------------- the fusion head


def test_the_shared_head_is_theirs_and_its_fused_logits_are_entropy_weighted():
    model = tiny_model().eval()
    assert [n for n, _ in model.fusion.named_parameters()] == ["fc_out.weight", "fc_out.bias"]
    assert model.fusion.fc_out.weight.shape == (6, 512)  # their ConcatFusion(input_dim=512) under --gs_flag
    with torch.no_grad():
        b = batch(5, 3)
        logits, parts, features = model(inputs(b), return_parts=True)
        a, v = features["audio"], features["vision"]
        out_a, out_v = model.fusion.fc_out(a), model.fusion.fc_out(v)
        assert torch.equal(parts["audio"], out_a) and torch.equal(parts["vision"], out_v)
        w_a, w_v = their_gating_weights(out_a, out_v)
        assert torch.allclose(logits, out_a * w_a + out_v * w_v, atol=1e-6)
        assert not torch.allclose(w_a, w_a[:1].expand_as(w_a))  # a weight per sample, not one per batch


def test_a_shared_model_saves_and_loads(tmp_path):
    model = tiny_model().eval()
    model.save_pretrained(tmp_path / "m")
    loaded = model_zoo.from_pretrained(tmp_path / "m").eval()
    x = inputs(batch(2, 4))
    with torch.no_grad():
        assert loaded.fusion.method == "shared" and torch.allclose(loaded(x), model(x), atol=1e-6)


# ---------------------------------------------------------------- one training step


def run_ours(model, batches, len_dataloader, **options):
    optimizer, method, logs = sgd(model), get_method("mla", **options), []
    loader = [None] * len_dataloader
    for step, b in enumerate(batches):
        context = StepContext(model, 0, step, torch.Generator(), train_loader=loader, optimizer=optimizer)
        if step == 0:
            method.start_epoch(context)
        out = Outputs(*model(inputs(b), return_parts=True), b["label"])
        method.backward(out, context)
        logs.append(method.after_backward(out, context))
        optimizer.step()  # the loop's: the last modality's update
        optimizer.zero_grad()
    return method, logs


def run_theirs(model, batches, len_dataloader, plugin_head):
    optimizer, plugin, losses = sgd(model), TheirGSPlugin(), []
    for step, b in enumerate(batches):
        losses.append(their_mla_batch(model, optimizer, plugin, plugin_head(model), b["audio"], b["vision"], b["label"],
                                      step, len_dataloader))
    return plugin, losses


def test_two_mla_batches_equal_their_train_epoch():
    """Batch 0: audio unprojected (their exp_count 0), vision projected; batch 1: both projected, P carried
    over, alpha at 1/3 of the epoch. Parameters after each modality's SGD step (momentum, weight decay)."""
    ours = tiny_model()
    theirs = copy.deepcopy(ours)
    batches = [batch(4, 10), batch(4, 11)]
    method, logs = run_ours(ours, batches, 3)
    plugin, losses = run_theirs(theirs, batches, 3, lambda m: nn.ModuleDict({"module": m.fusion.fc_out}))

    assert plugin.exp_count == method.state["updates"] == 4
    assert torch.allclose(method.state["projector"], plugin.Pl, atol=1e-6)
    assert (plugin.Pl * torch.eye(512).norm() - torch.eye(512)).abs().max() > 1e-3  # P is no longer the identity
    for log, (loss_a, loss_v), step in zip(logs, losses, range(2)):
        assert (log["loss_audio"], log["loss_vision"]) == pytest.approx((loss_a, loss_v), rel=1e-5)
        assert log["alpha"] == pytest.approx(0.1 ** (step / 3 + 1))
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_their_released_loop_never_projects():
    """Their loop hands the plugin the bare `fc_out`: no parameter is called "module.weight", so no
    projection; ours projects, so the heads part ways (the encoders too, from the second batch)."""
    ours = tiny_model()
    theirs = copy.deepcopy(ours)
    batches = [batch(4, 10), batch(4, 11)]
    run_ours(ours, batches, 3)
    plugin, _ = run_theirs(theirs, batches, 3, lambda m: m.fusion.fc_out)
    assert torch.equal(plugin.Pl, torch.eye(512))
    assert not torch.allclose(ours.fusion.fc_out.weight, theirs.fusion.fc_out.weight, atol=1e-4)


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize("options, message", [
    ({"projection_alpha": 0}, "mla: --projection-alpha must be above 0, got 0"),
    ({"projection_alpha": -0.1}, "mla: --projection-alpha must be above 0, got -0.1"),
])
def test_bad_hyperparameters_are_one_line(options, message):
    with pytest.raises(ModelZooError) as error:
        get_method("mla", **options).check(epochs=4)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_another_fusion_head_is_a_one_line_error():
    model = tiny_model("concat")
    with pytest.raises(ModelZooError) as error:
        get_method("mla").start_epoch(StepContext(model, 0, 0, torch.Generator(), train_loader=[None]))
    assert "--fusion shared" in str(error.value) and "'concat'" in str(error.value) and "\n" not in str(error.value)


def test_the_method_chooses_its_head_and_refuses_another(tmp_path, capsys):
    from model_zoo.train import parse_args

    common = ["--data", str(tmp_path), "--out", str(tmp_path / "run")]
    # the comparison starts every method from the concat recipe: MLA trains its shared head
    assert parse_args(["--recipe", "resnet18_separate-ogm-ge", "--method", "mla", *common]).fusion == "shared"
    assert parse_args(["--recipe", "resnet18_separate-ogm-ge", "--method", "ogm-ge", *common]).fusion == "concat"
    with pytest.raises(SystemExit):
        parse_args(["--recipe", "resnet18_separate-ogm-ge", "--method", "mla", "--fusion", "sum", *common])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--method mla trains the shared fusion head, not sum" in err, err


def test_the_recipe_is_their_crema_d_command(tmp_path):
    from model_zoo.train import parse_args

    args = parse_args(["--recipe", "resnet18_separate-ogm-ge-mla", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (args.model, args.variant, args.batch_size, args.lr, args.epochs) == ("resnet18_separate", "ogm-ge", 64, 1e-3, 100)
    assert (args.optimizer, args.momentum, args.weight_decay, args.schedule, args.lr_decay_epochs, args.lr_decay_ratio) == \
        ("sgd", 0.9, 1e-4, "step", 70, 0.1)
    assert (args.fusion, args.balancing.name, args.balancing.hyperparameters()) == ("shared", "mla", {"projection_alpha": 0.1})


def test_the_flag_reaches_the_method_and_a_bad_one_is_one_line(tmp_path, capsys):
    from model_zoo.train import parse_args

    common = ["--recipe", "resnet18_separate-ogm-ge-mla", "--data", str(tmp_path), "--out", str(tmp_path)]
    assert parse_args([*common, "--projection-alpha", "0.05"]).balancing.projection_alpha == 0.05
    with pytest.raises(SystemExit):
        parse_args([*common, "--projection-alpha", "0"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mla: --projection-alpha must be above 0, got 0.0" in err, err


# Several processes: tests/test_balancing_methods.py, `test_two_processes_update_like_one`, for every method.
