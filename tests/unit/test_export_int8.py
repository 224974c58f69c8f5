"""int8 export candidates: which recipes a CPU gets, the candidate table in export.json, and the choice
(fastest within --max-accuracy-drop when verified, most faithful when not). Timings are injected, so the
expectations are exact; a quantizer that ruins chosen recipes stands in for an inaccurate graph."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmkit.errors import FmkitError
from fmkit.inference import quantize as quantize_mod
from fmkit.inference.export import export_onnx
from fmkit.inference.predictor import Predictor
from fmkit.inference.quantize import Int8Candidate, choose, most_accurate, recipes_for
from tests.unit.test_export import ruin

pytest.importorskip("onnxruntime")

VNNI_CPU = {"avx2": True, "avx512f": True, "avx512bw": True, "avx512_vnni": True, "avx_vnni": False, "amx_int8": False}
AVX2_CPU = {"avx2": True, "avx512f": False, "avx512bw": False, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}
VNNI_RECIPES = ["sdpa_s8_channel", "fused_s8_channel", "fused_s8_tensor", "fused_s8_channel_fp32_attention"]
# Injected seconds per batch: per-tensor fastest, then fused per-channel, the unfused graph, fp32 attention.
SECONDS = {"fused_s8_tensor": 0.01, "fused_s8_channel": 0.02, "sdpa_s8_channel": 0.03,
           "fused_s8_channel_fp32_attention": 0.04, "fused_s8_channel_reduce_range": 0.05, "fused_u8_channel": 0.06}


def test_recipes_depend_on_vnni() -> None:
    assert [r.name for r in recipes_for(VNNI_CPU)] == VNNI_RECIPES
    assert [r.name for r in recipes_for({**AVX2_CPU, "amx_int8": True})] == VNNI_RECIPES
    without_vnni = [*VNNI_RECIPES, "fused_s8_channel_reduce_range", "fused_u8_channel"]
    assert [r.name for r in recipes_for(AVX2_CPU)] == without_vnni
    assert [r.name for r in recipes_for({})] == without_vnni  # unknown CPU: try them all
    reduce_range = recipes_for(AVX2_CPU)[4]
    assert reduce_range.reduce_range and not reduce_range.unsigned_weights and "Attention" in reduce_range.op_types
    assert recipes_for(AVX2_CPU)[5].unsigned_weights
    assert "Attention" not in recipes_for(VNNI_CPU)[3].op_types


def test_cpu_flags_parses_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n\nprocessor\t: 1\n")
    assert quantize_mod.cpu_flags(cpuinfo) == {"avx2": True, "avx512f": True, "avx512bw": False,
                                               "avx512_vnni": True, "avx_vnni": False, "amx_int8": False}
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert quantize_mod.cpu_flags(tmp_path / "arm") == {}
    assert quantize_mod.cpu_flags(tmp_path / "missing") == {}


def _candidate(name: str, seconds: float | None, delta: float | None = None, agreement: float = 1.0,
               diff: float = 0.1, error: str | None = None) -> Int8Candidate:
    return Int8Candidate(name, seconds_per_batch=seconds, accuracy_delta_points=delta, check_agreement=agreement,
                         mean_abs_logit_diff=diff, error=error)


def test_choose_fastest_within_the_allowed_drop() -> None:
    table = [_candidate("slow_exact", 0.04, 0.2), _candidate("fast_lossy", 0.01, -1.6),
             _candidate("mid", 0.02, -0.57), _candidate("broken", None, error="quantization failed")]
    chosen = choose(table, max_accuracy_drop=1.0, verified=True)
    assert chosen is not None and chosen.name == "mid"
    chosen = choose(table, max_accuracy_drop=2.0, verified=True)
    assert chosen is not None and chosen.name == "fast_lossy"
    chosen = choose(table, max_accuracy_drop=0.57, verified=True)  # the limit itself is allowed
    assert chosen is not None and chosen.name == "mid"
    assert choose(table, max_accuracy_drop=-0.5, verified=True) is None  # nothing gains half a point
    best = most_accurate(table)
    assert best is not None and best.name == "slow_exact"


def test_choose_breaks_speed_ties_by_accuracy_then_faithfulness() -> None:
    table = [_candidate("fastest", 0.100, -0.8), _candidate("close_but_better", 0.104, -0.2),
             _candidate("clearly_slower", 0.106, 0.3)]
    chosen = choose(table, max_accuracy_drop=1.0, verified=True)
    assert chosen is not None and chosen.name == "close_but_better"  # within 5% of the fastest and more accurate
    table = [_candidate("per_tensor", 0.100, -0.5, agreement=0.94, diff=0.12),
             _candidate("per_channel", 0.102, -0.5, agreement=0.97, diff=0.05)]
    chosen = choose(table, max_accuracy_drop=1.0, verified=True)
    assert chosen is not None and chosen.name == "per_channel"  # same accuracy: the more faithful one


def test_choose_most_faithful_when_unverified() -> None:
    table = [_candidate("fast", 0.01, agreement=0.94, diff=0.12), _candidate("close", 0.04, agreement=0.97, diff=0.05),
             _candidate("closest_labels", 0.02, agreement=0.97, diff=0.04), _candidate("broken", None, error="x")]
    chosen = choose(table, max_accuracy_drop=1.0, verified=False)
    assert chosen is not None and chosen.name == "closest_labels"


def test_time_backends_interleaves_and_reports_each(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, ids: np.ndarray, mask: np.ndarray, want: str = "logits") -> np.ndarray:
            calls.append((self.name, ids.shape[1]))
            return np.zeros((len(ids), 2), dtype=np.float32)

    batches = quantize_mod.synthetic_batches(vocab_size=50, batch=8, max_length=40)
    assert [ids.shape for ids, _ in batches] == [(8, 16), (8, 32), (8, 40)]  # 64 clipped to max_length
    ids, mask = batches[1]
    assert ids.min() >= 5 and ids.max() < 50 and mask[:4].all() and mask[4:, :16].all() and not mask[4:, 16:].any()
    seconds = quantize_mod.time_backends({"a": Fake("a"), "b": Fake("b")}, batches)
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())
    warm_up, timed = calls[:2], calls[2:]
    assert warm_up == [("a", 16), ("b", 16)]
    one_round = [("a", 16), ("a", 32), ("a", 40), ("b", 16), ("b", 32), ("b", 40)]
    assert timed == one_round * quantize_mod.TIMING_ROUNDS


# -- export with injected timings ----------------------------------------------------------------------------
# The tiny classifier's int8 graphs flip a text or two of the 60 (1.7 points each): the verified tests allow
# ALLOWED_DROP points, so only a ruined candidate (every label wrong) falls outside.
ALLOWED_DROP = 10.0



@pytest.fixture
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """A VNNI CPU whose candidate timings are SECONDS; returns the candidate names each timing call saw."""
    timed: list[list[str]] = []

    def time_backends(backends: Mapping[str, Any], batches: Sequence[Any]) -> dict[str, float]:
        timed.append(list(backends))
        return {name: SECONDS[name] for name in backends}

    monkeypatch.setattr(quantize_mod, "cpu_flags", lambda: dict(VNNI_CPU))
    monkeypatch.setattr(quantize_mod, "time_backends", time_backends)
    return timed


def _table(out: Path) -> dict[str, dict[str, Any]]:
    report = json.loads((out / "export.json").read_text())
    assert report["cpu_flags"] == VNNI_CPU
    return {row["name"]: row for row in report["int8_candidates"]}


def test_verified_export_keeps_the_fastest_accurate_candidate(classifier_dir: Path, verify_csv: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              fixed_machine: list[list[str]]) -> None:
    ruin(monkeypatch, {"fused_s8_tensor"})  # the fastest one loses every label
    out = tmp_path / "int8"
    report = export_onnx(classifier_dir, out, quantize="int8", verify=verify_csv, max_accuracy_drop=ALLOWED_DROP)
    assert fixed_machine == [VNNI_RECIPES]  # every candidate built (fusion works on the tiny BERT) and timed once
    table = _table(out)
    assert list(table) == VNNI_RECIPES
    assert [name for name, row in table.items() if row["chosen"]] == ["fused_s8_channel"]
    assert report.int8_recipe == "fused_s8_channel"
    assert {name: row["seconds_per_batch"] for name, row in table.items()} == {n: SECONDS[n] for n in VNNI_RECIPES}
    # Negated logits get right only the texts its int8 graph already got wrong: one or two of 60.
    assert table["fused_s8_tensor"]["accuracy_delta_points"] <= -100 + ALLOWED_DROP
    assert all(row["error"] is None and row["accuracy"] is not None for row in table.values())
    assert json.loads((out / "fmkit.json").read_text())["int8_recipe"] == "fused_s8_channel"
    # The written graph is the chosen one: its accuracy is that candidate's, measured the same way.
    assert report.export_accuracy == table["fused_s8_channel"]["accuracy"] and report.export_accuracy >= 0.9
    assert any(note.startswith("int8: fused_s8_channel (fastest within") for note in report.notes)
    onnx_p = Predictor.load(out, backend="onnx")
    assert onnx_p.backend.session.get_outputs()[0].name == "logits"
    assert [i.name for i in onnx_p.backend.session.get_inputs()] == ["input_ids", "attention_mask"]
    assert {o.name for o in onnx_p.backend.session.get_outputs()} == {"logits", "embedding"}


def test_a_larger_allowed_drop_takes_the_faster_lossy_graph(classifier_dir: Path, verify_csv: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            fixed_machine: list[list[str]]) -> None:
    ruin(monkeypatch, {"fused_s8_tensor"})
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8", verify=verify_csv, max_accuracy_drop=100)
    assert report.int8_recipe == "fused_s8_tensor" and report.export_accuracy is not None
    assert report.export_accuracy <= ALLOWED_DROP / 100


def test_force_keeps_the_most_accurate_when_all_lose(classifier_dir: Path, verify_csv: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     fixed_machine: list[list[str]]) -> None:
    ruin(monkeypatch, set(VNNI_RECIPES) - {"fused_s8_channel_fp32_attention"})
    with pytest.raises(FmkitError, match=r"int8 export refused.*fused_s8_channel_fp32_attention") as refused:
        export_onnx(classifier_dir, tmp_path / "int8", quantize="int8", verify=verify_csv, max_accuracy_drop=-1)
    assert "of 4 int8 graphs" in str(refused.value) and not (tmp_path / "int8").exists()
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8", verify=verify_csv, max_accuracy_drop=-1,
                         force=True)
    assert report.int8_recipe == "fused_s8_channel_fp32_attention"  # the slowest, but the only accurate one
    assert report.forced and any("accepted with --force" in note for note in report.notes)


def test_unverified_export_keeps_the_most_faithful(classifier_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   fixed_machine: list[list[str]]) -> None:
    ruin(monkeypatch, set(VNNI_RECIPES) - {"sdpa_s8_channel"})
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8")
    table = _table(tmp_path / "int8")
    assert report.int8_recipe == "sdpa_s8_channel" and table["sdpa_s8_channel"]["chosen"]
    assert table["sdpa_s8_channel"]["check_agreement"] >= 0.9
    assert all(row["check_agreement"] <= 0.1 for name, row in table.items() if name != "sdpa_s8_channel")
    assert all(row["accuracy"] is None for row in table.values())
    assert any("--verify" in note for note in report.notes)


def test_failed_fusion_leaves_the_unfused_candidate(classifier_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    fixed_machine: list[list[str]]) -> None:
    def no_fusion(*args: Any) -> int:
        raise RuntimeError("unsupported graph")

    monkeypatch.setattr(quantize_mod, "fuse_transformer", no_fusion)
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8")
    table = _table(tmp_path / "int8")
    assert fixed_machine == [["sdpa_s8_channel"]]
    assert report.int8_recipe == "sdpa_s8_channel"
    assert all("unsupported graph" in row["error"] for name, row in table.items() if name != "sdpa_s8_channel")
    assert any("fused candidates skipped" in note for note in report.notes)


def test_no_fused_attention_is_reported(classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        fixed_machine: list[list[str]]) -> None:
    real: Callable[..., int] = quantize_mod.fuse_transformer
    monkeypatch.setattr(quantize_mod, "fuse_transformer", lambda *args: real(*args) * 0)
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8")
    assert report.int8_recipe == "sdpa_s8_channel"
    assert any("fused no Attention node" in note for note in report.notes)


def test_cpu_without_vnni_builds_reduce_range_and_uint8_candidates(classifier_dir: Path, verify_csv: Path,
                                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    fixed_machine: list[list[str]]) -> None:
    monkeypatch.setattr(quantize_mod, "cpu_flags", lambda: dict(AVX2_CPU))
    ruin(monkeypatch, set(VNNI_RECIPES))  # only the two no-VNNI recipes stay accurate
    report = export_onnx(classifier_dir, tmp_path / "int8", quantize="int8", verify=verify_csv,
                         max_accuracy_drop=ALLOWED_DROP)
    table = {row["name"]: row for row in report.int8_candidates}
    assert report.cpu_flags == AVX2_CPU
    assert list(table) == [*VNNI_RECIPES, "fused_s8_channel_reduce_range", "fused_u8_channel"]
    assert all(row["error"] is None for row in table.values())
    assert report.int8_recipe == "fused_s8_channel_reduce_range"  # the faster of the two accurate ones
