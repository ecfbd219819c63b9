"""MMPareto: innocent unimodal assistance (Wei & Hu, ICML 2024), as the authors' training loop does it.

The rule of GeWu-Lab/MMPareto_ICML2024, code/MMPareto.py `train_epoch` with
code/min_norm_solvers.py (commit a339db3): three losses, the fused cross-entropy and each
modality's own. For each encoder, g_m is the gradient of the fused loss and g_u that of its own
modality's loss. If their cosine is positive the weights are (1/2, 1/2); otherwise the two-task
min-norm (MGDA) weights (c, 1 - c), `MinNormSolver._min_norm_element_from2` on the dot products.
Then for each encoder parameter tensor, with `new = 2 c g_m + 2 (1 - c) g_u` and `g` that tensor's
gradient of the summed losses, the gradient becomes `gamma * new * max(1, |g| / |new|)` (norms
per tensor); the other parameters (the heads) keep the summed losses' gradient.

How ours gets there, and why it holds under several processes: their four backward passes
(each loss, then the sum) cannot run under DDP, which synchronises on every backward of one
forward and refuses a second. Ours computes g_m and g_u of the encoder parameters with
`torch.autograd.grad` (which DDP does not see: it fills no `.grad`), averages them over the
processes itself (`global_mean`, one all-reduce), and runs one `accelerator.backward` of the
summed losses, which DDP averages as usual. The losses are batch means, so the averages are
the global batch's gradients on equal shares: the cosines, min-norm weights and norms are those
of the global batch, the same numbers on every process, and two processes make the update one
makes on their global batch. Three backward passes instead of their four (the fused and the two
unimodal losses' encoder gradients, then the sum); g_u of both encoders comes from one pass of
`loss_audio + loss_vision`, as each modality's logits depend on its own encoder only. Under fp16
the losses are scaled before every pass, so all gradients carry the same scale.

Differences from their code: their model has separate unimodal heads (`head_audio`, `head_video`)
beside the concat head; ours takes each modality's logits from the fusion head
(`FusionHead.unimodal_logits`, as BalanceBenchmark's concat model does), so the unimodal losses
also train the fusion head. Their encoder gradients are the audio_net / visual_net parameters
whose names do not contain `head`; ours are `model.audio` and `model.vision`. A parameter whose
combined gradient is zero keeps a zero gradient (theirs divides by a zero norm).

Hyperparameters: `gamma` 1.5 is hard-coded in their loop; they train CREMA-D with SGD (momentum
0.9, weight decay 1e-4), batch 64, learning rate 2e-3 decayed by 0.1 every 30 epochs, 50 epochs
(their argparse defaults, script/mmpareto.sh), with no epoch window. BalanceBenchmark
(balancemm/trainer/MMPareto_trainer.py, configs/trainer_config.yaml, commit 4c1482f) names gamma
`alpha` (1.5), applies the method only in epochs 0..80 (outside them `training_step` returns an unassigned `total_loss`),
records each loss's gradients without zeroing in between (so they accumulate), and assigns the
min-norm weights to the loop variable instead of the weights: with a negative cosine its weights
stay (0, 0) and the encoder's gradient becomes 0 times an infinite norm ratio (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import BalancingMethod, Outputs, StepContext, check_positive

MODALITIES = ("audio", "vision")


def min_norm_weight(v1v1: float, v1v2: float, v2v2: float) -> float:
    """c minimising |c x1 + (1 - c) x2| from the dot products, clipped as theirs (0.999, 0.001)."""
    if v1v2 >= v1v1:
        return 0.999
    if v1v2 >= v2v2:
        return 0.001
    return (v2v2 - v1v2) / (v1v1 + v2v2 - 2 * v1v2)


@dataclass(frozen=True)
class MMPareto(BalancingMethod):
    gamma: float = 1.5  # hard-coded in their loop; BalanceBenchmark's `alpha`

    name = "mmpareto"
    summary = ("each encoder's fused and unimodal gradients combined by Pareto (min-norm) weights "
               "when they conflict, at least the summed gradient's norm, times gamma")
    paper = "Wei & Hu, ICML 2024; GeWu-Lab/MMPareto_ICML2024 code/MMPareto.py"
    modulates_each_step = True

    def check(self, epochs: int) -> None:
        check_positive(self.name, "gamma", self.gamma)

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        """g_m and g_u of every encoder parameter (averaged over processes), then the summed losses' backward."""
        accelerator = context.accelerator
        scaler = getattr(accelerator, "scaler", None)
        scale = scaler.scale if scaler is not None else (lambda x: x)
        fused = F.cross_entropy(out.logits, out.labels)
        unimodal = F.cross_entropy(out.parts["audio"], out.labels) + F.cross_entropy(out.parts["vision"], out.labels)
        params = [p for m in MODALITIES for p in context.encoder(m).parameters() if p.requires_grad]
        flat = []
        for loss in (fused, unimodal):
            grads = torch.autograd.grad(scale(loss), params, retain_graph=True, allow_unused=True)
            flat.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]))
        both = context.global_mean(torch.stack(flat))  # one all-reduce for both
        self.state["grads"] = (params, both[0], both[1])
        loss = fused + unimodal
        context.backward(loss)
        return loss

    @torch.no_grad()
    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        params, g_fused, g_own = self.state.pop("grads")
        log, offset, spans = {}, 0, {}
        for p in params:
            spans[id(p)] = (offset, offset + p.numel())
            offset += p.numel()
        for m in MODALITIES:
            own = [p for p in context.encoder(m).parameters() if p.requires_grad]
            if not own:
                continue
            start, end = spans[id(own[0])][0], spans[id(own[-1])][1]
            g1, g2 = g_fused[start:end].double(), g_own[start:end].double()
            cos = F.cosine_similarity(g1, g2, dim=0).item()
            if cos > 0:
                c = 0.5
            else:
                c = min_norm_weight(g1.dot(g1).item(), g1.dot(g2).item(), g2.dot(g2).item())
            for p in own:
                if p.grad is None:
                    continue
                a, b = spans[id(p)]
                new = (2 * c * g_fused[a:b] + 2 * (1 - c) * g_own[a:b]).view_as(p).to(p.grad.dtype)
                new_norm = new.norm()
                ratio = p.grad.norm() / new_norm if new_norm > 0 else torch.ones((), device=new.device)
                p.grad = new * self.gamma * torch.clamp(ratio, min=1)
            log[f"cos_{m}"], log[f"weight_{m}"] = cos, c
        return log
