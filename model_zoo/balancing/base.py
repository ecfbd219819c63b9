"""What a balancing method is: the hooks the separate-encoder trainer calls, designed once.

The training loop (`model_zoo.train`) stays one loop. Each step it runs the model with each
modality's logits (`model(x, return_parts=True)`), asks the method for the loss, backpropagates,
lets the method change the gradients, then steps the optimizer:

    method.restore_state(saved)              # once per run: empty state, or what the resumed checkpoint kept
    method.start_epoch(context)              # per-epoch state (prototypes, boosting rounds), once per epoch
    out = Outputs(*model(inputs, return_parts=True), labels, inputs)
    loss = method.backward(out, context)     # default: accelerator.backward(method.loss(out))
    method.after_backward(out, context)      # gradient modulation (OGM-GE), between backward and step
    optimizer.step()

Whatever a method computes from the batch comes from the global batch: `context.global_sum`
adds a per-process tensor over all processes (a no-op on one), and under DDP the gradients a
method reads after backward are already averaged over the processes. Noise is drawn from
`context.generator`, seeded alike on every process, so every process makes the same update.
State a method carries from step to step (`state`) is computed from global sums, so it is the same
on every process; what of it must survive a resume, `saved_state` hands to the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..config import ModelZooError


@dataclass(frozen=True)
class Outputs:
    """One step's model outputs: the fused logits, each modality's logits and features, the labels, and
    the model input they came from (for a method that reruns the encoders on a changed input: AGM)."""

    logits: torch.Tensor
    parts: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    inputs: Any = None


@dataclass
class StepContext:
    """Where training stands, for a method's hooks."""

    model: torch.nn.Module  # the unwrapped model: its `audio` and `vision` encoders
    epoch: int  # 0-based, as the authors' loops count
    step: int  # global optimizer step
    generator: torch.Generator  # seeded from (training seed, step): the same numbers on every process
    accelerator: Any = None
    train_loader: Any = None  # for start_epoch: the training batches (each process its share)
    model_input: Any = None  # batch -> the model's input on the device (`to_model_input` with the model's config)
    optimizer: Any = None  # the training optimizer, for methods that step it more than once per batch (MLA; the loop
    # makes the last step) or start it afresh (ReconBoost's new optimizer per phase)

    def global_sum(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over all processes (the global batch's), or itself on one process."""
        if self.accelerator is None or self.accelerator.num_processes == 1:
            return value
        return self.accelerator.reduce(value.detach().clone(), "sum")

    def global_mean(self, value: torch.Tensor) -> torch.Tensor:
        """`value` averaged over all processes, as DDP averages gradients (for gradients a method
        computes itself, e.g. with `torch.autograd.grad`, which DDP does not synchronise)."""
        processes = 1 if self.accelerator is None else self.accelerator.num_processes
        return self.global_sum(value) / processes if processes > 1 else value

    def encoder(self, modality: str) -> torch.nn.Module:
        return getattr(self.model, modality)

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate `loss` through accelerate (DDP's averaging, mixed precision's loss scale), or
        plainly where a test gives no accelerator."""
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def backward_reaching_only(self, loss: torch.Tensor) -> None:
        """Backpropagate `loss` to the parameters it reaches; every other one ends with no gradient (None),
        so the optimizer leaves it, momentum and weight decay included (a zero gradient would still move
        it). DDP wants every parameter in each backward: the others join with weight 0, then lose it."""
        reached = parameters_reached(loss)
        idle = [p for p in self.model.parameters() if p.requires_grad and id(p) not in reached]
        self.backward(loss + sum(0.0 * p.sum() for p in idle))
        for p in idle:
            p.grad = None


def parameters_reached(loss: torch.Tensor) -> set[int]:
    """The ids of the parameters `loss` depends on: the leaves of its autograd graph."""
    reached, seen, nodes = set(), set(), [loss.grad_fn]
    while nodes:
        node = nodes.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf that requires grad
            reached.add(id(node.variable))
        nodes.extend(child for child, _ in node.next_functions)
    return reached


@dataclass(frozen=True)
class BalancingMethod:
    """A balancing method: its hyperparameters are the dataclass fields, its defaults the paper's."""

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str]  # the paper and the code it follows
    modulates_each_step: ClassVar[bool] = False  # reads one step's gradients: no gradient accumulation
    judged_on: ClassVar[str | None] = None  # the logits a run is selected and reported by: the fused (None), or
    # one modality's own (the unimodal runs, whose other encoder never trains)
    fusion: ClassVar[str | None] = None  # the fusion head the method trains (MLA: shared); None: any

    def check(self, epochs: int) -> None:
        """Bad hyperparameters for a run of `epochs` epochs: a `ModelZooError` naming the fix."""

    def start_epoch(self, context: StepContext) -> None:
        """Once before each epoch's first step (also after a resume): per-epoch state."""

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        """Backpropagate this step's loss and return it (for the log). A method needing several
        backward passes (one per loss, as Pareto methods do) overrides this."""
        loss = self.loss(out)
        context.backward(loss)
        return loss

    def loss(self, out: Outputs) -> torch.Tensor:
        """The loss to backpropagate (the joint baseline's: cross-entropy of the fused logits)."""
        return F.cross_entropy(out.logits, out.labels)

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        """Change the gradients before the optimizer step; returns what to log (e.g. coefficients)."""
        return {}

    @property
    def state(self) -> dict:
        """What the method keeps between hooks within one run (PMR's prototypes, the gradients
        MMPareto's backward hands to after_backward). Not a dataclass field: the fields are the
        hyperparameters (the training flags) and the method is frozen."""
        return self.__dict__.setdefault("_state", {})

    def saved_state(self) -> dict:
        """What of `state` a training checkpoint keeps (numbers, tensors), for a resumed run to go on from:
        AGM's running scores, MLA's projector. Most methods keep nothing (PMR recomputes its prototypes
        in start_epoch)."""
        return {}

    def restore_state(self, saved: dict) -> None:
        """Once at the start of every run: `state` emptied (a run over several seeds reuses the method),
        then filled with what `saved_state` gave the checkpoint being resumed, if any."""
        self.state.clear()
        self.state.update(saved)

    def hyperparameters(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_positive(method: str, name: str, value: float) -> None:
    if not value > 0:
        raise ModelZooError(f"{method}: --{name.replace('_', '-')} must be above 0, got {value}")


def check_window(method: str, starts: int, ends: int, epochs: int, what: str = "the method") -> None:
    """An epoch window (`--modulation-starts`, `--modulation-ends`, from 0, both included) that runs."""
    if not 0 <= starts <= ends:
        raise ModelZooError(f"{method}: the epoch window {starts}..{ends} is empty; "
                            "give 0 <= --modulation-starts <= --modulation-ends (epochs counted from 0)")
    if starts >= epochs:
        raise ModelZooError(f"{method}: --modulation-starts {starts} is after the last epoch "
                            f"({epochs - 1}, counted from 0): {what} would never run; lower it or train longer")
