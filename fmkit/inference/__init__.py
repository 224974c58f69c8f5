"""Layer 5: load a saved model and use it. No training dependencies."""

from fmkit.inference.predictor import Predictor, load

__all__ = ["Predictor", "load"]
