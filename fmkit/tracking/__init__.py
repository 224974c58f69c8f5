"""Layer 3 (beside training): where runs are recorded. SQLite registry, TensorBoard, MLflow.

Imports config, utils and training.tracking only; workflows wire it in through
workflows/rundir.py (RunStatus and run_trackers).
"""

from fmkit.tracking.recorder import RunRecorder, build_trackers, record_eval
from fmkit.tracking.registry import Registry, RunRecord, run_id_for

__all__ = ["Registry", "RunRecord", "RunRecorder", "build_trackers", "record_eval", "run_id_for"]
