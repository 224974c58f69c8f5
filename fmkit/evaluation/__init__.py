"""Layer 4: predictions -> metrics -> reports. Never imported by training."""

from fmkit.evaluation.metrics import classification_metrics, format_confusion, format_report, headline

__all__ = ["classification_metrics", "format_confusion", "format_report", "headline"]
