"""PMR, MMPareto and AGM: one step of ours equals one step of the authors' rule, reduced from their code.

References:
- PMR: fanyunfeng-bit/Modal-Imbalance-PMR, main_Prototype_grad.py at commit
  3615e48983555089b0e693380087617c3797a641 (`EU_dist`, `calculate_prototype`, `train_epoch` with
  `--modulation Proto`).
- MMPareto: GeWu-Lab/MMPareto_ICML2024, code/MMPareto.py (`train_epoch`) and code/min_norm_solvers.py
  (`MinNormSolver` for two tasks) at commit a339db39cc25b157df376b50bb894917dc6c01d6.
- AGM: lihong2303/AGM_ICCV2023, model/CREMAD_net.py (`GradMod`, `AVClassifier`) and run/CREMAD_main.py
  (`train` with `--methods AGM`, late fusion) at commit 5a65542c70b1c7c15c5df291e77fa9cf2bbb9549.

Their models return (a, v, out) from (spec, image); ours gives the same features and fused logits
(`model.features`, `model.fusion`), and the per-modality logits are OGM-GE's from the fusion head
(their `train_epoch` computes PMR's the same way; MMPareto's own model has separate unimodal heads,
stated in model_zoo/balancing/mmpareto.py). Their parameter names are audio_net / visual_net; ours
audio / vision, so their name tests read those.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn
from two_processes import assert_same_updates, one_and_two_processes

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


class TheirModalityOut(nn.Module):
    """AGM model/CREMAD_net.py Modality_out: the identity their backward hooks sit on."""

    def forward(self, x):
        return x


class TheirGradMod(nn.Module):
    """AGM model/CREMAD_net.py GradMod around their AVClassifier, whose forward(audio, visual,
    pad_audio, pad_visual) zeroes the padded input, then runs the encoders and the concat head (here
    our model's `features` and `fusion`)."""

    def __init__(self, net):
        super().__init__()
        self.mode = "train"
        self.net = net
        self.m_v_o, self.m_a_o = TheirModalityOut(), TheirModalityOut()
        self.scale_a = self.scale_v = 1.0
        self.m_a_o.register_full_backward_hook(self.hooka)
        self.m_v_o.register_full_backward_hook(self.hookv)

    def hooka(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return gnew * self.scale_a,

    def hookv(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return gnew * self.scale_v,

    def update_scale(self, coeff_a, coeff_v):
        self.scale_a, self.scale_v = coeff_a, coeff_v

    def av_classifier(self, audio, visual, pad_audio=False, pad_visual=False):
        if pad_audio:
            audio = torch.zeros_like(audio, device=audio.device)
        if pad_visual:
            visual = torch.zeros_like(visual, device=visual.device)
        return self.net.fusion(*self.net.features({"audio": audio, "vision": visual}))

    def forward(self, audio, visual):
        total_out = self.av_classifier(audio, visual, pad_audio=False, pad_visual=False)
        self.net.eval()
        pad_visual_out = self.av_classifier(audio, visual, pad_audio=False, pad_visual=True)
        pad_audio_out = self.av_classifier(audio, visual, pad_audio=True, pad_visual=False)
        zero_padding_out = self.av_classifier(audio, visual, pad_audio=True, pad_visual=True)
        if self.mode == "train":
            self.net.train()
        m_a = self.m_a_o(0.5 * (total_out - pad_audio_out + pad_visual_out))  # Modality_Audio
        m_v = self.m_v_o(0.5 * (total_out - pad_visual_out + pad_audio_out))  # Modality_Visual
        return total_out, pad_visual_out, pad_audio_out, zero_padding_out, m_a + m_v


def their_agm_step(model, spec, image, label, train_score_a, train_score_v, iteration, alpha, modulate=True):
    """AGM run/CREMAD_main.py train, one Multimodal step with --methods AGM (late fusion), from the forward
    up to optimizer.step(); `modulate` is their `modulation_starts <= epoch <= modulation_ends`."""
    criterion, softmax = nn.CrossEntropyLoss(), nn.Softmax(dim=1)
    total_out, pad_visual_out, pad_audio_out, zero_padding_out, out = model(spec, image)
    out_a = 0.5 * (total_out - pad_audio_out + pad_visual_out)
    out_v = 0.5 * (total_out - pad_visual_out + pad_audio_out)
    loss = criterion(out, label)
    model.zero_grad()  # their optimizer.zero_grad()
    if torch.isnan(out_a).any() or torch.isnan(out_v).any():
        raise ValueError
    score_audio = 0.
    score_visual = 0.
    for k in range(out_a.size(0)):
        if torch.isinf(torch.log(softmax(out_a)[k][label[k]])) or softmax(out_a)[k][label[k]] < 1e-8:
            score_audio += - torch.log(torch.tensor(1e-8, dtype=out_a.dtype, device=out_a.device))
        else:
            score_audio += - torch.log(softmax(out_a)[k][label[k]])
        if torch.isinf(torch.log(softmax(out_v)[k][label[k]])) or softmax(out_v)[k][label[k]] < 1e-8:
            score_visual += - torch.log(torch.tensor(1e-8, dtype=out_v.dtype, device=out_v.device))
        else:
            score_visual += - torch.log(softmax(out_v)[k][label[k]])
    score_audio = score_audio / out_a.size(0)
    score_visual = score_visual / out_v.size(0)
    ratio_a = math.exp(score_visual.item() - score_audio.item())
    ratio_v = math.exp(score_audio.item() - score_visual.item())
    optimal_ratio_a = math.exp(train_score_v - train_score_a)
    optimal_ratio_v = math.exp(train_score_a - train_score_v)
    coeff_a = math.exp(alpha * (min(optimal_ratio_a - ratio_a, 10)))
    coeff_v = math.exp(alpha * (min(optimal_ratio_v - ratio_v, 10)))
    train_score_a = train_score_a * (iteration - 1) / iteration + score_audio.item() / iteration
    train_score_v = train_score_v * (iteration - 1) / iteration + score_visual.item() / iteration
    if modulate:
        model.update_scale(coeff_a, coeff_v)
    loss.backward()
    grad_max = torch.max(model.net.fusion.fc_out.weight.grad)
    grad_min = torch.min(model.net.fusion.fc_out.weight.grad)
    clipped = bool(grad_max > 1 or grad_min < -1)
    if clipped:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    return loss, coeff_a, coeff_v, train_score_a, train_score_v, clipped


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


# ---------------------------------------------------------------- AGM


@pytest.mark.parametrize("history", [None, (2.4, 1.1, 3)])
def test_agm_steps_equal_their_train_loop(history):
    """Two steps of ours and of their loop (GradMod's hooks), each from the same weights: the same loss,
    coefficients, running scores (carried from step to step), gradients (through the eval-mode passes on
    zeroed inputs, BatchNorm with running statistics), clipping, weights and BatchNorm statistics after
    an SGD step. `history`: running audio and vision scores after that many earlier steps, so that the
    coefficients move far from 1 (and clip the gradients)."""
    ours = tiny_model()
    net = copy.deepcopy(ours)
    theirs = TheirGradMod(net)
    method = get_method("agm", alpha=1.5)
    method.restore_state({} if history is None else {"running_scores": history[:2], "steps": history[2]})
    running_a, running_v, done = (0.0, 0.0, 0) if history is None else history
    clips = []
    for step in range(2):
        b = batch(6, 10 + step)
        out = Outputs(*ours(inputs(b), return_parts=True), b["label"], inputs(b))
        context = StepContext(ours, epoch=0, step=done + step, generator=torch.Generator())
        loss = method.backward(out, context)
        log = method.after_backward(out, context)
        assert ours.training and all(m.training for m in ours.modules())  # the eval-mode passes leave it training
        their_loss, coeff_a, coeff_v, running_a, running_v, clipped = their_agm_step(
            theirs, b["audio"], b["vision"], b["label"], running_a, running_v, done + step + 1, alpha=1.5)
        assert loss.item() == pytest.approx(their_loss.item(), rel=1e-5)
        assert (log["coeff_audio"], log["coeff_vision"]) == pytest.approx((coeff_a, coeff_v), rel=1e-4)
        assert method.state["running_scores"] == pytest.approx((running_a, running_v), rel=1e-5)
        assert method.state["steps"] == done + step + 1 and log["clipped"] == float(clipped)
        for (name, p), q in zip(ours.named_parameters(), net.parameters()):
            assert close(p.grad, q.grad), name
        clips.append(clipped)
        assert sgd_step_equal(ours, net)
        for (name, p), q in zip(ours.state_dict().items(), net.state_dict().values()):
            assert torch.allclose(p.float(), q.float(), atol=1e-6), name  # BatchNorm statistics too
        # float32 differences of 1e-7 grow to 1e-3 within two steps through BatchNorm over a few 2 x 2
        # maps (their loop against itself does the same): the next step starts from the same weights
        net.load_state_dict(ours.state_dict())
        ours.zero_grad(), net.zero_grad()
    if history is not None:
        assert abs(math.log(log["coeff_audio"])) > 0.5 and abs(math.log(log["coeff_vision"])) > 0.3
        assert any(clips)


def test_agm_outside_its_window_is_the_joint_gradient_and_still_tracks_scores():
    """Outside the window ours is their update with both coefficients 1 (their hooks' scales before the
    window), and the running scores go on."""
    ours = tiny_model()
    plain = copy.deepcopy(ours)
    theirs = TheirGradMod(copy.deepcopy(ours))
    method = get_method("agm", modulation_starts=1, modulation_ends=3)
    b = batch(4, 3)
    out = Outputs(*ours(inputs(b), return_parts=True), b["label"], inputs(b))
    context = StepContext(ours, epoch=0, step=0, generator=torch.Generator())
    method.backward(out, context)
    log = method.after_backward(out, context)
    *_, running_a, running_v, _ = their_agm_step(theirs, b["audio"], b["vision"], b["label"], 0.0, 0.0, 1, 1.5, modulate=False)
    torch.nn.functional.cross_entropy(plain(inputs(b)), b["label"]).backward()
    assert (log["coeff_audio"], log["coeff_vision"]) == (1.0, 1.0)
    assert method.state["running_scores"] == pytest.approx((running_a, running_v), rel=1e-5)
    for (name, p), q, r in zip(ours.named_parameters(), theirs.parameters(), plain.parameters()):
        assert close(p.grad, q.grad) and close(p.grad, r.grad), name


@pytest.mark.parametrize("fusion, layer", [("concat", "fc_out"), ("sum", "fc_y"), ("gated", "fc_out")])
def test_agm_clips_by_the_output_layer_on_unscaled_gradients(fusion, layer):
    """Their check reads the head's output-layer weight gradient (ours: each head's logit layers); under
    fp16 the gradients still carry the loss scale after backward, so the check divides it out."""
    from types import SimpleNamespace

    from model_zoo.fusion import FusionHead

    model, calls = nn.Module(), []
    model.fusion = FusionHead(fusion, 4, 6)
    accelerator = SimpleNamespace(scaler=SimpleNamespace(get_scale=lambda: 1024.0),
                                  clip_grad_norm_=lambda parameters, norm: calls.append(norm))
    method = get_method("agm")
    for unscaled, clipped in ((0.9, False), (-1.1, True)):
        weight = getattr(model.fusion, layer).weight
        weight.grad = torch.zeros_like(weight)
        weight.grad[0, 0] = unscaled * 1024.0
        log = method.after_backward(None, StepContext(model, 0, 0, torch.Generator(), accelerator))
        assert log["clipped"] == float(clipped)
    assert calls == [1.0]


def test_agm_needs_the_inputs_and_resumes_from_its_saved_state():
    model = tiny_model()
    b = batch(2, 1)
    method = get_method("agm")
    with pytest.raises(ModelZooError, match="give Outputs the step's inputs"):
        method.backward(Outputs(*model(inputs(b), return_parts=True), b["label"]),
                        StepContext(model, epoch=0, step=0, generator=torch.Generator()))
    method.restore_state({"running_scores": (1.0, 2.0), "steps": 7})
    method.state["log"] = {"coeff_audio": 2.0}
    assert method.saved_state() == {"running_scores": (1.0, 2.0), "steps": 7}  # what a checkpoint keeps
    method.restore_state({})  # the next seed's run starts afresh
    assert method.state == {} and get_method("pmr").saved_state() == {}


# ---------------------------------------------------------------- bad hyperparameters


@pytest.mark.parametrize("name, options, message", [
    ("pmr", {"alpha": 0}, "pmr: --alpha must be above 0, got 0"),
    ("pmr", {"momentum_coef": 1.0}, "--momentum-coef must be in [0, 1)"),
    ("pmr", {"prototype_fraction": 0.0}, "--prototype-fraction must be in (0, 1]"),
    ("pmr", {"modulation_starts": 5}, "--modulation-starts 5 is after the last epoch (3, counted from 0)"),
    ("mmpareto", {"gamma": -1.0}, "mmpareto: --gamma must be above 0, got -1.0"),
    ("agm", {"alpha": 0.0}, "agm: --alpha must be above 0, got 0.0"),
    ("agm", {"alpha": 80.0}, "agm: --alpha 80.0 is too large"),
    ("agm", {"modulation_starts": 4}, "--modulation-starts 4 is after the last epoch (3, counted from 0)"),
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


def test_two_processes_update_like_one(tmp_path):
    """Every method on a tiny two-encoder model (tests/two_processes.py): 2 CPU processes with half the batch
    each make the same updates as one process with the whole batch. PMR: prototypes and scores from all
    processes' batches; MMPareto: its own gradients averaged over the processes, one DDP backward; AGM:
    scores from the global batch, extra passes through the unwrapped model in DDP's one backward, started
    far from 1; MLA: each modality's gradients and mean feature averaged (no DDP backward for the first),
    its projector alike; ReconBoost: both boosting phases and a rectification, DDP accepting the boosting
    steps whose loss reaches one encoder; the unimodal runs likewise."""
    runs = {
        "pmr": {"method": "pmr", "options": {"prototype_fraction": 0.5, "alpha": 2.0}, "loader": (0, 10), "steps": (10, 14)},
        "mmpareto": {"method": "mmpareto", "loader": (0, 10), "steps": (10, 14)},
        "agm": {"method": "agm", "options": {"alpha": 3.0}, "restore": {"running_scores": (1.5, 2.5), "steps": 4},
                "loader": (0, 10), "steps": (10, 14)},
        "mla": {"method": "mla", "fusion": "shared", "weight_decay": 1e-3, "loader": (0, 4), "steps": (0, 4),
                "state": ["projector"]},
        "reconboost": {"method": "reconboost", "options": {"boosting_epochs": 1, "rectification_epochs": 1},
                       "fusion": "sum", "weight_decay": 5e-4, "epochs": 3},
        "audio-only": {"method": "audio-only", "weight_decay": 1e-3, "steps": (0, 3)},
    }
    one, two = one_and_two_processes(tmp_path, runs)
    for name in runs:
        assert_same_updates(one[name], two[name])
    # each run did what it is for: the checks would pass on runs that do nothing
    assert {log["proto_audio"] > 0 for log in one["pmr"]["logs"]} | {log["proto_vision"] > 0 for log in one["pmr"]["logs"]} == {True, False}
    assert max(abs(math.log(log["coeff_audio"])) for log in one["agm"]["logs"]) > 1
    assert [sorted(log) for log in one["reconboost"]["logs"]] == [["ensemble_prob"]] * 2 + [[]] * 2 + [["ensemble_prob"]] * 2
    assert len(one["mla"]["logs"]) == 4 and one["mla"]["state"]["projector"]
