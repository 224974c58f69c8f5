"""ONNX export: parity with torch, int8 verification and refusal, backends, predict on an export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.errors import FmkitError, ModelError
from fmkit.inference import quantize as quantize_mod
from fmkit.inference.backends import available_backends
from fmkit.inference.export import export_onnx
from fmkit.inference.predictor import Predictor
from fmkit.inference.quantize import recipes_for

TEXTS = ["good", "the movie was really very good and the plot was great", "bad awful film",
         "it is not so bad but not great either , the actor was fine", "a"]


def build_classifier(tiny_model: Path, out: Path) -> Path:
    """A two-label classifier on the tiny BERT, with a head large enough to give visible logit differences."""
    import torch

    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    torch.manual_seed(1)
    model = TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=32)
    torch.nn.init.normal_(model.head.linear.weight, std=1.0)
    model.save_pretrained(out, load_tokenizer(tiny_model))
    return out


def write_verify_csv(classifier_dir: Path, path: Path) -> Path:
    """Labels = the source model's own predictions: source accuracy is exactly 1.0, so any change is a drop."""
    import random

    words = ["good", "great", "bad", "awful", "movie", "plot", "the", "was", "not", "very", "stock", "fall", "rise"]
    rng = random.Random(0)
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(60)]
    labels = [r["label"] for r in Predictor.load(classifier_dir, backend="torch").predict(texts)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


@pytest.fixture(scope="module")
def fp32_export(classifier_dir: Path, verify_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "onnx"
    export_onnx(classifier_dir, out, verify=verify_csv)
    return out


def test_fp32_export_matches_torch_and_keeps_the_layout(classifier_dir: Path, fp32_export: Path) -> None:
    meta = json.loads((fp32_export / "fmkit.json").read_text())
    assert meta["format"] == "onnx" and meta["quantization"] == "none" and meta["labels"] == ["neg", "pos"]
    assert (fp32_export / "tokenizer.json").is_file() and (fp32_export / "model.onnx").is_file()
    assert available_backends(fp32_export) == ["torch", "onnx"]
    report = json.loads((fp32_export / "export.json").read_text())
    assert report["agreement"] == 1.0 and report["accuracy_delta_points"] == 0.0 and report["examples"] == 60
    torch_p = Predictor.load(classifier_dir, backend="torch")
    onnx_p = Predictor.load(fp32_export, backend="onnx")
    assert onnx_p.backend.name == "onnx"
    a, b = torch_p.predict_proba(TEXTS), onnx_p.predict_proba(TEXTS)
    assert np.abs(a - b).max() < 1e-4
    assert [r["label"] for r in torch_p.predict(TEXTS)] == [r["label"] for r in onnx_p.predict(TEXTS)]
    ea, eb = torch_p.embed(TEXTS), onnx_p.embed(TEXTS)
    assert ea.shape == (5, 32) and np.allclose(np.linalg.norm(eb, axis=1), 1.0, atol=1e-5)
    assert np.abs(ea - eb).max() < 1e-4


def test_batch_and_padding_do_not_change_onnx_outputs(fp32_export: Path) -> None:
    p = Predictor.load(fp32_export, backend="onnx")
    together = p.predict_proba(TEXTS)
    p.batch_size = 1
    alone = p.predict_proba(TEXTS)
    assert np.abs(together - alone).max() < 1e-5


def test_auto_backend_measures_once_and_caches(fp32_export: Path) -> None:
    p = Predictor.load(fp32_export)  # auto
    cache = json.loads((fp32_export / "backend.json").read_text())
    assert cache["backend"] == p.backend.name and set(cache["seconds_per_batch"]) == {"torch", "onnx"}
    cache["backend"] = "torch" if p.backend.name == "onnx" else "onnx"
    (fp32_export / "backend.json").write_text(json.dumps(cache))
    assert Predictor.load(fp32_export).backend.name == cache["backend"]  # read from the cache, not re-measured


def test_int8_export_is_verified(classifier_dir: Path, verify_csv: Path, tmp_path: Path) -> None:
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8", verify=verify_csv, force=True)
    assert report.quantization == "int8" and report.source_accuracy == 1.0
    assert report.agreement is not None and report.agreement >= 0.9
    assert report.accuracy_delta_points == pytest.approx(100 * (report.export_accuracy - 1.0), abs=1e-3)
    assert available_backends(tmp_path / "int8") == ["onnx"]  # no fp32 twin for an int8 graph
    with pytest.raises(ModelError, match="backend 'torch' is not available"):
        Predictor.load(tmp_path / "int8", backend="torch")


def negate_logits(path: Path) -> None:
    """Rewrite a graph so its logits are negated: with two labels every prediction flips."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    for node in model.graph.node:
        node.output[:] = ["logits_orig" if o == "logits" else o for o in node.output]
        node.input[:] = ["logits_orig" if i == "logits" else i for i in node.input]
    model.graph.node.append(helper.make_node("Neg", ["logits_orig"], ["logits"]))
    onnx.save(model, str(path))


def ruin(monkeypatch: pytest.MonkeyPatch, names: set[str]) -> None:
    """The recipes in `names` produce graphs that get every label wrong."""
    real = quantize_mod.quantize_graph

    def quantize_graph(source: Path, out: Path, recipe: quantize_mod.Int8Recipe) -> None:
        real(source, out, recipe)
        if recipe.name in names:
            negate_logits(out)

    monkeypatch.setattr(quantize_mod, "quantize_graph", quantize_graph)


def test_int8_refused_when_accuracy_drops(classifier_dir: Path, verify_csv: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    ruin(monkeypatch, {recipe.name for recipe in recipes_for({})})  # every candidate gets every label wrong
    out = tmp_path / "int8"
    code = main(["export", str(classifier_dir), "--format", "onnx", "--quantize", "int8", "--output", str(out),
                 "--verify", str(verify_csv)])
    assert code == 2
    err = capsys.readouterr().err
    assert "int8 export refused" in err and "--force" in err and "Traceback" not in err
    assert not out.exists()  # nothing written
    assert main(["export", str(classifier_dir), "--quantize", "int8", "--output", str(out), "--verify", str(verify_csv),
                 "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forced"] and report["accuracy_delta_points"] < -1 and (out / "model.onnx").is_file()


def test_export_refuses_bad_targets(classifier_dir: Path, fp32_export: Path, tmp_path: Path) -> None:
    with pytest.raises(FmkitError, match="is the model folder itself"):
        export_onnx(classifier_dir, classifier_dir)
    with pytest.raises(ModelError, match="already an ONNX export"):
        export_onnx(fp32_export, tmp_path / "again")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FmkitError, match="not an fmkit export"):
        export_onnx(classifier_dir, tmp_path / "busy")


def test_predict_cli_runs_an_export(fp32_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    assert main(["predict", str(fp32_export), str(texts), "--backend", "onnx"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    expected = Predictor.load(fp32_export, backend="torch").predict(TEXTS)
    assert [x["label"] for x in lines] == [x["label"] for x in expected]
