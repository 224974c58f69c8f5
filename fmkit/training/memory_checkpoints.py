"""Checkpoints kept in memory: for short phases (a head on cached vectors, the few-shot pair phase)
that re-run in seconds, where writing resumable state to disk at every evaluation would cost
more than the phase itself. Same interface as `Checkpoints`, so the loop does not know."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmkit.training.state import Checkpoints, LoopState


class MemoryCheckpoints(Checkpoints):
    def __init__(self) -> None:
        super().__init__(Path("checkpoints-in-memory"))  # never written
        self.best_state: dict[str, torch.Tensor] | None = None

    def save_last(self, accelerator: Any, state: LoopState) -> None:
        pass  # nothing to resume from: the phase is re-run instead

    def load_last(self, accelerator: Any) -> LoopState | None:
        return None

    def save_best(self, model: nn.Module, state: LoopState) -> None:
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load_best_into(self, model: nn.Module) -> bool:
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def remove(self) -> None:
        self.best_state = None
