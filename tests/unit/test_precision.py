"""Inference precision: what 'auto' resolves to, and that old model folders keep fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fmkit.models import precision as precision_module
from fmkit.models.precision import inference_autocast, resolve_inference_precision


def test_explicit_precisions_are_kept() -> None:
    assert resolve_inference_precision("fp32") == "fp32"
    assert resolve_inference_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        resolve_inference_precision("fp16")


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_where_the_cpu_runs_it_natively(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
    assert resolve_inference_precision("auto") == ("bf16" if native else "fp32")


def test_autocast_runs_matmuls_in_bf16_and_fp32_is_untouched() -> None:
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with inference_autocast("bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with inference_autocast("fp32"):
        assert (a @ b).dtype == torch.float32


def test_a_folder_saved_before_precision_was_recorded_loads_as_fp32(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.inference.predictor import Predictor
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    model = TextClassifier.from_backbone(tiny_model, ["a", "b"])
    model.precision = "bf16"
    model.save_pretrained(tmp_path / "m", load_tokenizer(tiny_model))
    meta_path = tmp_path / "m" / "fmkit.json"
    assert json.loads(meta_path.read_text())["precision"] == "bf16"
    assert Predictor.load(tmp_path / "m", backend="torch").backend.precision == "bf16"  # type: ignore[attr-defined]
    meta = json.loads(meta_path.read_text())
    del meta["precision"]
    meta_path.write_text(json.dumps(meta))
    assert Predictor.load(tmp_path / "m", backend="torch").backend.precision == "fp32"  # type: ignore[attr-defined]
    assert Predictor.load(tmp_path / "m", backend="torch", precision="bf16").backend.precision == "bf16"  # type: ignore[attr-defined]
