"""Optimizer, schedule and checkpoints (save and resume), written atomically."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fmkit.config.schema import TrainConfig
from fmkit.utils.io import atomic_directory, atomic_write_json

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with a higher learning rate for the new head and no decay on biases and norms."""
    head_lr = cfg.head_learning_rate or cfg.learning_rate * 10
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.startswith("head.")
        decay = not any(marker in name for marker in _NO_DECAY)
        groups.setdefault((is_head, decay), []).append(param)
    param_groups = [
        {"params": params, "lr": head_lr if is_head else cfg.learning_rate,
         "weight_decay": cfg.weight_decay if decay else 0.0}
        for (is_head, decay), params in groups.items()
    ]
    # The fused kernel is ~4x faster than foreach on CPU (measured: 42 vs 192 ms a step for MiniLM's 22.7M
    # weights, a quarter of the whole step), so use it wherever this torch build has it.
    try:
        return torch.optim.AdamW(param_groups, betas=(0.9, 0.999), eps=1e-8, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(param_groups, betas=(0.9, 0.999), eps=1e-8, foreach=True)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to the peak learning rate, then linear decay to zero."""
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class LoopState:
    """Where the loop is; saved with every checkpoint so a resumed run continues exactly."""

    step: int = 0                 # optimizer steps taken
    epoch: int = 0                # current epoch (0-based)
    batches_in_epoch: int = 0     # batches of `epoch` already consumed
    examples_seen: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    evals_without_improvement: int = 0
    train_seconds: float = 0.0    # wall time since the run started, evaluations included
    eval_seconds: float = 0.0     # the part of it spent evaluating (excluded from examples/s)
    checkpoint_seconds: float = 0.0  # ... and writing checkpoints (excluded too: I/O, not training)


class Checkpoints:
    """checkpoints/last: full resumable state; checkpoints/best: weights of the best evaluation."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.last = self.directory / "last"
        self.best = self.directory / "best"

    def save_last(self, accelerator: Any, state: LoopState) -> None:
        if not accelerator.is_main_process:
            accelerator.wait_for_everyone()
            return
        with atomic_directory(self.last) as tmp:
            accelerator.save_state(str(tmp), safe_serialization=True)
            (tmp / "loop_state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
        accelerator.wait_for_everyone()

    def load_last(self, accelerator: Any) -> LoopState | None:
        if not (self.last / "loop_state.json").is_file():
            return None
        accelerator.load_state(str(self.last))
        return LoopState(**json.loads((self.last / "loop_state.json").read_text(encoding="utf-8")))

    def save_best(self, model: nn.Module, state: LoopState) -> None:
        with atomic_directory(self.best) as tmp:
            weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
            save_file(weights, str(tmp / "model.safetensors"))
            atomic_write_json(tmp / "best.json", {"step": state.step, "metrics": state.best_metrics})

    def load_best_into(self, model: nn.Module) -> bool:
        path = self.best / "model.safetensors"
        if not path.is_file():
            return False
        model.load_state_dict(load_file(str(path)))
        return True

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
