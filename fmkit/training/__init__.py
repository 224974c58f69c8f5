"""Layer 3: one explicit training loop; variation comes in through small callables and protocols."""

from fmkit.training.loop import LoopResult, configure_threads, make_accelerator, train_loop
from fmkit.training.state import Checkpoints
from fmkit.training.tracking import HistoryFile, Tracker, Trackers

__all__ = [
    "Checkpoints",
    "HistoryFile",
    "LoopResult",
    "Tracker",
    "Trackers",
    "configure_threads",
    "make_accelerator",
    "train_loop",
]
