"""ONNX export of the other body + head tasks: regression (single texts and cross-encoded pairs) and multi-label.

The exported folder must give the torch model's answers through onnxruntime (fp32 to 1e-4 here), keep the
task's own fmkit.json fields (scaling, thresholds, pair input) and load with the task's predictor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmkit.cli import main
from fmkit.inference import load_predictor
from fmkit.inference.export import export_onnx
from tests.unit.test_multilabel import write_tagged
from tests.unit.test_regression import write_scores

pytest.importorskip("onnxruntime")


def train(tiny_model: Path, tmp_path: Path, task: str, data: Path, *extra: str) -> Path:
    run = tmp_path / f"run-{task}"
    assert main(["train", "--task", task, "--data", str(data), "--model", str(tiny_model), "--output", str(run),
                 "--quiet", "--batch-size", "8", "--epochs", "1", "--strategy", "full", *extra]) == 0
    return run


@pytest.mark.parametrize("pairs", [False, True], ids=["texts", "pairs"])
def test_regression_export_matches_torch(tiny_model: Path, tmp_path: Path, pairs: bool) -> None:
    data = write_scores(tmp_path / "d.jsonl", 60, 0, pairs=pairs)
    run = train(tiny_model, tmp_path, "regression", data)
    report = export_onnx(run, tmp_path / "onnx")
    assert report.max_abs_logit_diff < 1e-4
    meta = json.loads((tmp_path / "onnx" / "fmkit.json").read_text())
    assert meta["format"] == "onnx" and meta["task"] == "regression" and meta["pair_input"] is pairs
    torch_side, onnx_side = load_predictor(run), load_predictor(tmp_path / "onnx", backend="onnx")
    assert onnx_side.backend.name == "onnx"
    rows = [json.loads(line) for line in data.read_text().splitlines()[:6]]
    if pairs:
        items = [(r["sentence1"], r["sentence2"]) for r in rows]
        expected, got = torch_side.predict_pairs(items), onnx_side.predict_pairs(items)
    else:
        texts = [r["text"] for r in rows]
        expected, got = torch_side.predict(texts), onnx_side.predict(texts)
    # A value is the head's output times the target's scale (scores span 0-5 here), so the graph's 1e-4 on the
    # output is a few 1e-4 on the value, depending on the CPU's kernels.
    assert [r["value"] for r in got] == pytest.approx([r["value"] for r in expected], abs=1e-3)


def test_multilabel_int8_export_keeps_thresholds(tiny_model: Path, tmp_path: Path) -> None:
    run = train(tiny_model, tmp_path, "multilabel", write_tagged(tmp_path / "t.jsonl", 60, 0))
    report = export_onnx(run, tmp_path / "int8", quantize="int8")
    assert report.quantization == "int8" and any("--verify" in note for note in report.notes)
    source = json.loads((run / "model" / "fmkit.json").read_text())
    exported = json.loads((tmp_path / "int8" / "fmkit.json").read_text())
    assert exported["thresholds"] == source["thresholds"]
    records = load_predictor(tmp_path / "int8").predict(["the profit and market"])
    assert set(records[0]) == {"labels", "scores"} and set(records[0]["scores"]) == {"film", "mood", "price"}


def test_verify_is_refused_for_tasks_without_labels(tiny_model: Path, tmp_path: Path) -> None:
    data = write_scores(tmp_path / "d.jsonl", 40, 1)
    run = train(tiny_model, tmp_path, "regression", data)
    from fmkit.errors import FmkitError

    with pytest.raises(FmkitError, match="--verify measures label accuracy"):
        export_onnx(run, tmp_path / "onnx", verify=data)
    assert not (tmp_path / "onnx").exists()


def test_pair_int8_export_keeps_inputs_and_outputs(tiny_model: Path, tmp_path: Path) -> None:
    """Pair models compute segment ids inside the graph; every int8 candidate, fused ones too, must keep fmkit's
    two inputs and two outputs and stay close to the torch model."""
    import onnxruntime as ort

    data = write_scores(tmp_path / "d.jsonl", 60, 0, pairs=True)
    run = train(tiny_model, tmp_path, "regression", data)
    report = export_onnx(run, tmp_path / "int8", quantize="int8")
    table = {row["name"]: row for row in report.int8_candidates}
    assert report.int8_recipe in table and table[report.int8_recipe]["chosen"]
    assert table["sdpa_s8_channel"]["error"] is None
    session = ort.InferenceSession(str(tmp_path / "int8" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert [o.name for o in session.get_outputs()] == ["logits", "embedding"]
    rows = [json.loads(line) for line in data.read_text().splitlines()[:6]]
    items = [(r["sentence1"], r["sentence2"]) for r in rows]
    expected = load_predictor(run).predict_pairs(items)
    got = load_predictor(tmp_path / "int8").predict_pairs(items)
    assert [r["value"] for r in got] == pytest.approx([r["value"] for r in expected], abs=0.1)
