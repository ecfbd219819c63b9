"""ReconBoost: our training steps equal the authors' rule, reduced from their code.

Reference: huacong/ReconBoost at commit 14ab57ac26e0ad7badb29c4e08ec4ca9d4bb0932: train.py `main`
(phase 1, the boosting loss, with `--use_pretrain` and `--use_ga` as their CREMA-D command; phase 2,
global rectification), models/dynamic_net.py (`DynamicNet.forward` with `mask_model`, `forward_grad`)
and schedule.py (`schedule_model`, fixed mode: audio in even stages, visual in odd ones).

Reduced: their learners (`AudioNet` / `VisualNet` with `fc` set to the shared `Head`) are built here
on our model's encoders and the fusion head's per-modality linear layers (`sum` fusion), the
stated difference; their `boost_rate` is held at its initial 1.0 (ours has none); one batch per
loop iteration, their optimizers created as they create them (one per phase of a stage). The steps
are compared in float64, where the two agree to rounding (1e-10).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn, optim

import model_zoo
from model_zoo.balancing import Outputs, StepContext, get_method
from model_zoo.config import ModelZooError

# ---------------------------------------------------------------- their code, reduced


def their_schedule_model(stage):
    """schedule.py schedule_model, fixed_mode, dataset CREMAD."""
    return "audio" if stage % 2 == 0 else "visual"


def their_epochs(stages, epochs_per_stage, correct_epoch):
    """train.py main's loop over stages as a list of epochs: each phase-1 epoch names the learner trained, each
    phase-2 (correction) epoch is None."""
    epochs = []
    for stage in range(stages):
        model_name = their_schedule_model(stage)
        epochs += [model_name] * epochs_per_stage + [None] * correct_epoch
    return epochs


class TheirLearner(nn.Module):
    """models/CREMA/basic_model.py AudioNet / VisualNet with `fc` replaced by the head (`common_space`): the
    encoder, their pooling (the visual one over frames: backbone.py folds T into the batch), the head."""

    def __init__(self, encoder, fc, frames=False):
        super().__init__()
        self.net, self.fc, self.frames = encoder, fc, frames

    def forward(self, x):
        if not self.frames:
            return self.fc(self.net(x))
        b, c, t, h, w = x.size()
        v = self.net(x.permute(0, 2, 1, 3, 4).contiguous().view(b * t, c, h, w))  # pooled per frame
        return self.fc(v.view(b, t, -1).mean(dim=1))  # adaptive_avg_pool3d over T of the pooled frames


def their_boosting_step(learners, model_name, optimizer, data, lbl, stage, weight1=5.0, weight2=1.0, alpha=0.5,
                        n_class=6):
    """train.py main, phase 1, one batch: `optimizer` is theirs, SGD over `model.parameters()` only."""
    mse_criterion = nn.MSELoss()
    boost_rate = 1.0
    model = learners[model_name]
    pre_model_name = "visual" if model_name == "audio" else "audio"
    pre_model = learners[pre_model_name]
    with torch.no_grad():  # DynamicNet.forward(data, mask_model=model_name): the others' summed logits
        out_join = boost_rate * pre_model(data[pre_model_name])
    out_obj = model(data[model_name])
    target = torch.zeros(len(lbl), n_class, dtype=out_obj.dtype).scatter_(1, lbl.view(-1, 1), 1)
    boosting_loss = - weight1 * (target * out_obj.log_softmax(1)).mean(-1) \
        + weight2 * (target * out_join.detach().softmax(1) * out_obj.log_softmax(1)).mean(-1)
    model.zero_grad()
    if stage == 0:
        loss = boosting_loss
    else:
        pre_out_obj = pre_model(data[pre_model_name])
        ga_loss = mse_criterion(out_obj.detach().softmax(1), pre_out_obj.detach().softmax(1))
        loss = boosting_loss + alpha * ga_loss
    loss.mean().backward()
    optimizer.step()
    return (target * out_join.softmax(1)).sum(1).mean().item()  # the ensemble's mean probability of the label


def their_correction_step(learners, optimizer, data, lbl):
    """train.py main, phase 2, one batch: `optimizer` is SGD over every learner (net_ensemble.parameters())."""
    boost_rate = 1.0
    out = boost_rate * (learners["visual"](data["visual"]) + learners["audio"](data["audio"]))  # forward_grad
    loss = nn.CrossEntropyLoss()(out, lbl)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def their_sgd(params, lr=1e-2):
    """Their optimizers: `optim.SGD(..., lr, momentum=0.9, weight_decay=5e-4)`, new for each phase."""
    return optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)


# ---------------------------------------------------------------- the model and batches


def tiny_model(fusion="sum", seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return model_zoo.create_model("resnet18_separate", variant="ogm-ge", fusion=fusion).train().to(dtype)


def batch(size, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return {"audio": torch.rand(size, 1, 64, 48, generator=g).to(dtype),
            "vision": torch.rand(size, 3, 1, 64, 64, generator=g).to(dtype), "label": torch.randint(0, 6, (size,), generator=g)}


def inputs(b):
    return {"audio": b["audio"], "vision": b["vision"]}


def close(ours, theirs, tol=1e-10):
    """Equal up to float64 rounding (in float32, BatchNorm over a batch of two amplifies rounding to ~1e-4)."""
    return (ours - theirs).abs().max() <= tol * theirs.abs().max()


# ---------------------------------------------------------------- the schedule


def test_phases_follow_their_stages():
    """Epochs in their order: phase 1 of the stage's modality, then correction, audio first."""
    for boosting, rectification in ((4, 4), (1, 0), (2, 3)):
        method = get_method("reconboost", boosting_epochs=boosting, rectification_epochs=rectification)
        theirs = their_epochs(5, boosting, rectification)
        ours = [method.phase(epoch)[0] for epoch in range(len(theirs))]
        assert ours == [{"visual": "vision"}.get(m, m) for m in theirs]
        starts = [epoch for epoch in range(len(theirs)) if method.phase(epoch)[1]]
        assert starts == [e for e in range(len(theirs)) if e == 0 or theirs[e] != theirs[e - 1]]


def test_the_optimizer_starts_afresh_with_each_phase_but_not_on_a_resume():
    """Their new optimizer per phase: the state is cleared at a phase's first step, kept at any other epoch's
    start and when a run resumes in the middle of a phase's first epoch (step past the epoch's start)."""
    model = tiny_model()
    method = get_method("reconboost", boosting_epochs=2, rectification_epochs=1)
    loader = [batch(2, 0)] * 3
    for epoch, step, cleared in ((0, 0, True), (1, 3, False), (2, 6, True), (3, 9, True), (3, 10, False)):
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        optimizer.state[next(model.parameters())]["momentum_buffer"] = torch.ones(1)
        method.start_epoch(StepContext(model, epoch, step, torch.Generator(), train_loader=loader, optimizer=optimizer))
        assert (len(optimizer.state) == 0) == cleared, (epoch, step)


# ---------------------------------------------------------------- steps equal theirs


def test_two_stages_of_steps_equal_their_loop():
    """Stage 0 (audio boosted, two batches), its correction, then stage 1 (vision boosted, with their ga term):
    one phase per epoch here, two batches each. Ours: one SGD optimizer for the run, as the training loop has;
    theirs: a new one per phase over the learner trained. Parameters compared after every step, and the
    modality not trained is checked unmoved (momentum and weight decay would move a zero gradient)."""
    ours = tiny_model(dtype=torch.float64)
    theirs = copy.deepcopy(ours)
    learners = {"audio": TheirLearner(theirs.audio, theirs.fusion.fc_x),
                "visual": TheirLearner(theirs.vision, theirs.fusion.fc_y, frames=True)}
    loader = [batch(2, 1, torch.float64), batch(2, 2, torch.float64)]
    optimizer = optim.SGD(ours.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    method = get_method("reconboost", boosting_epochs=1, rectification_epochs=1)
    their_optimizer, step = None, 0
    for epoch, (stage, trained) in enumerate(((0, "audio"), (0, None), (1, "visual"))):
        frozen = {"audio": "vision", "visual": "audio"}.get(trained)
        before = {n: p.detach().clone() for n, p in ours.named_parameters()}
        their_optimizer = their_sgd(learners[trained].parameters() if trained else
                                    [p for m in ("audio", "visual") for p in learners[m].parameters()])
        for b in loader:
            context = StepContext(ours, epoch, step, torch.Generator(), train_loader=loader, optimizer=optimizer)
            if b is loader[0]:
                method.start_epoch(context)
            out = Outputs(*ours(inputs(b), return_parts=True), b["label"])
            method.backward(out, context)
            log = method.after_backward(out, context)
            optimizer.step()
            optimizer.zero_grad()
            data = {"audio": b["audio"], "visual": b["vision"]}
            if trained:
                ensemble_prob = their_boosting_step(learners, trained, their_optimizer, data, b["label"], stage)
                assert log["ensemble_prob"] == pytest.approx(ensemble_prob, rel=1e-12)
            else:
                their_correction_step(learners, their_optimizer, data, b["label"])
                assert log == {}
            for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
                assert close(p, q), (epoch, step, name)
            step += 1
        moved = {n for n, p in ours.named_parameters() if not torch.equal(p, before[n])}
        if frozen:
            assert moved == {n for n, _ in ours.named_parameters() if not n.startswith(frozen) and
                             n not in {"vision": ("fusion.fc_y.weight", "fusion.fc_y.bias"),
                                       "audio": ("fusion.fc_x.weight", "fusion.fc_x.bias")}[frozen]}
        else:
            assert moved == set(before)


def test_the_boosting_loss_is_their_formula():
    """The loss value of one boosting step, and the other modality's logits as the ensemble (no gradient)."""
    model = tiny_model()
    b = batch(5, 3)
    out = Outputs(*model(inputs(b), return_parts=True), b["label"])
    loss = get_method("reconboost", ce_weight=3.0, reconcile_weight=2.0).backward(
        out, StepContext(model, epoch=0, step=0, generator=torch.Generator()))
    target = torch.zeros(5, 6).scatter_(1, b["label"].view(-1, 1), 1)
    obj, join = out.parts["audio"], out.parts["vision"]
    theirs = (-3.0 * (target * obj.log_softmax(1)).mean(-1) + 2.0 * (target * join.softmax(1) * obj.log_softmax(1)).mean(-1))
    assert loss.item() == pytest.approx(theirs.mean().item(), rel=1e-6)
    assert all(p.grad is None or not p.grad.any() for p in model.vision.parameters())


def test_concat_fusion_trains_the_whole_head_and_film_is_refused():
    model = tiny_model("concat")
    method = get_method("reconboost")
    method.start_epoch(StepContext(model, 0, 0, torch.Generator()))
    b = batch(3, 4)
    out = Outputs(*model(inputs(b), return_parts=True), b["label"])
    context = StepContext(model, epoch=0, step=0, generator=torch.Generator())
    method.backward(out, context)
    method.after_backward(out, context)
    assert all(p.grad is None for p in model.vision.parameters())
    assert all(p.grad is not None for p in (*model.audio.parameters(), *model.fusion.parameters()))
    with pytest.raises(ModelZooError, match="train with --fusion sum or concat .* not film"):
        method.start_epoch(StepContext(tiny_model("film"), 0, 0, torch.Generator()))


# ---------------------------------------------------------------- bad hyperparameters, flags, recipe


@pytest.mark.parametrize("options, message", [
    ({"boosting_epochs": 0}, "reconboost: --boosting-epochs must be a whole number of at least 1, got 0"),
    ({"rectification_epochs": 1.5}, "--rectification-epochs must be a whole number of at least 0, got 1.5"),
    ({"ce_weight": 0.0}, "reconboost: --ce-weight must be above 0, got 0.0"),
    ({"reconcile_weight": 6.0}, "--reconcile-weight must be in [0, --ce-weight = 5.0]"),
    ({"boosting_epochs": 2, "rectification_epochs": 2}, "4 epochs never reach the vision stage (epoch 4, counted from 0)"),
])
def test_bad_hyperparameters_are_one_line(options, message):
    with pytest.raises(ModelZooError) as error:
        get_method("reconboost", **options).check(epochs=4 if "boosting_epochs" in options else 20)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_flags_reach_the_method_as_whole_numbers_and_alpha_is_refused(tmp_path, capsys):
    from model_zoo.train import parse_args

    common = ["--model", "resnet18_separate", "--variant", "ogm-ge", "--data", str(tmp_path), "--out", str(tmp_path)]
    args = parse_args([*common, "--method", "reconboost", "--boosting-epochs", "2", "--rectification-epochs", "1",
                       "--reconcile-weight", "0.5"])
    assert args.balancing.hyperparameters() == {"boosting_epochs": 2, "rectification_epochs": 1, "ce_weight": 5.0,
                                                "reconcile_weight": 0.5}
    assert isinstance(args.balancing.boosting_epochs, int)
    with pytest.raises(SystemExit):
        parse_args([*common, "--method", "reconboost", "--alpha", "0.5"])
    assert "reconboost takes no --alpha" in capsys.readouterr().err


def test_the_recipe_is_their_crema_d_command(tmp_path):
    from model_zoo.train import parse_args

    args = parse_args(["--recipe", "resnet18_separate-ogm-ge-reconboost", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (args.model, args.variant, args.fusion, args.batch_size, args.lr) == ("resnet18_separate", "ogm-ge", "sum", 64, 0.01)
    assert (args.optimizer, args.momentum, args.weight_decay) == ("sgd", 0.9, 5e-4)
    assert (args.schedule, args.lr_decay_epochs, args.lr_decay_ratio, args.epochs) == ("step", 240, 0.1, 800)
    assert args.balancing.hyperparameters() == {"boosting_epochs": 4, "rectification_epochs": 4, "ce_weight": 5.0,
                                                "reconcile_weight": 1.0}


# Several processes: tests/test_balancing_methods.py, `test_two_processes_update_like_one`, for every method.
