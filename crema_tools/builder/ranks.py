"""This process's place among a parallel build's processes (one, unless under `accelerate launch`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from ..errors import BuildError


class SaidByProcessZero(BuildError):
    """Process 0 of a parallel build refused to start, and said why: the others stay quiet."""


@dataclass
class Ranks:
    """This process's place among the build's processes (one, unless under `accelerate launch`)."""

    rank: int = 0
    world: int = 1
    here: int = 1  # build processes on this machine
    device: str | None = None  # this process's GPU, when it has one
    state: object = field(default=None, repr=False)

    @classmethod
    def current(cls) -> "Ranks":
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
        state = PartialState(cpu=cpu, timeout=timedelta(days=7))  # process 0 may plan for long while the others wait
        device = str(state.device) if state.device is not None and state.device.type == "cuda" else None
        here = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes) or 1)
        return cls(state.process_index, state.num_processes, here, device, state)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def broadcast(self, obj):
        """Process 0's `obj`, in every process."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]
