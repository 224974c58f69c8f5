"""Layer 2: backbone + head = task model. Heads return logits or vectors; losses are separate."""

from fmkit.models.backbone import resolve_model_path
from fmkit.models.classifier import TextClassifier, predict_logits

__all__ = ["TextClassifier", "predict_logits", "resolve_model_path"]
