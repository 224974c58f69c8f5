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


def test_bf16_linear_weights_give_autocast_outputs_exactly_and_are_put_back(tiny_model: Path) -> None:
    from fmkit.models.classifier import TextClassifier
    from fmkit.models.precision import bf16_linear_weights

    model = TextClassifier.from_backbone(tiny_model, ["a", "b"]).eval()
    ids = torch.randint(5, 100, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    params = dict(model.named_parameters())
    with torch.inference_mode(), inference_autocast("bf16"):
        reference = model(ids, mask)
    with bf16_linear_weights(model):
        assert model.head.linear.weight.dtype == torch.bfloat16
        assert model.encoder.embeddings.word_embeddings.weight.dtype == torch.float32  # not a Linear
        with torch.inference_mode(), inference_autocast("bf16"):
            cast = model(ids, mask)
    assert torch.equal(reference, cast)
    for name, param in model.named_parameters():  # the same Parameter objects, their fp32 values untouched
        assert param is params[name] and param.dtype == torch.float32 and torch.equal(param, before[name])


def test_a_linear_tied_to_an_embedding_keeps_fp32() -> None:
    from fmkit.models.precision import bf16_linear_weights

    embedding = torch.nn.Embedding(10, 4)
    decoder = torch.nn.Linear(4, 10, bias=False)
    decoder.weight = embedding.weight  # tied, as an MLM head is
    other = torch.nn.Linear(4, 4)
    model = torch.nn.ModuleList([embedding, decoder, other])
    with bf16_linear_weights(model):
        assert embedding.weight.dtype == torch.float32 and other.weight.dtype == torch.bfloat16


def test_frozen_linear_weights_in_bf16_train_exactly_like_autocast(tiny_model: Path) -> None:
    """Cast once for the run or at every step: the same gradients; fp32 comes back for evals and on exit."""
    from fmkit.models.classifier import TextClassifier
    from fmkit.models.precision import FrozenLinearWeightsInBf16

    ids = torch.randint(5, 100, (4, 7))
    mask = torch.ones_like(ids)
    labels = torch.tensor([0, 1, 1, 0])

    def grads(cast_once: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = TextClassifier.from_backbone(tiny_model, ["a", "b"]).eval()  # eval: no dropout randomness
        model.encoder.requires_grad_(False)
        model.encoder.encoder.layer[-1].output.dense.requires_grad_(True)  # one trainable Linear stays fp32
        frozen = FrozenLinearWeightsInBf16(model, enabled=cast_once)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        with frozen:
            if cast_once:
                assert model.encoder.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
                assert model.encoder.encoder.layer[-1].output.dense.weight.dtype == torch.float32  # trains
                assert model.head.linear.weight.dtype == torch.float32
                with frozen.fp32():
                    assert all(p.dtype == torch.float32 for p in model.parameters())
                assert model.encoder.encoder.layer[0].attention.self.query.weight.dtype == torch.bfloat16
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(ids, mask)
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
        for name, param in model.named_parameters():
            assert param.dtype == torch.float32 and torch.equal(param.detach(), before[name])
        return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    cast_once, every_step = grads(True), grads(False)
    assert len(FrozenLinearWeightsInBf16(torch.nn.Linear(2, 2), enabled=False)) == 0
    assert cast_once.keys() == every_step.keys() and cast_once
    assert all(torch.equal(cast_once[n], every_step[n]) for n in cast_once)


def test_a_bf16_torch_backend_casts_weights_once_and_recasts_after_an_in_place_change(tiny_model: Path) -> None:
    import numpy as np

    from fmkit.inference.backends import TorchBackend
    from fmkit.models.classifier import TextClassifier

    model = TextClassifier.from_backbone(tiny_model, ["a", "b"]).eval()
    ids = np.random.default_rng(0).integers(5, 100, size=(3, 6)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[2, 4:] = 0

    def per_call_autocast() -> np.ndarray:  # what the backend did before it cached the casts
        with torch.inference_mode(), inference_autocast("bf16"):
            return model.head(model.embed(torch.from_numpy(ids), torch.from_numpy(mask))).float().numpy()

    backend = TorchBackend(model, precision="bf16")
    first = backend.run(ids, mask)
    np.testing.assert_array_equal(first, per_call_autocast())
    query = model.encoder.encoder.layer[0].attention.self.query
    assert query.weight.dtype == torch.float32  # the model keeps fp32 between passes (export, fine-tuning read it)
    cast = backend._bf16_weights._casts[0] if backend._bf16_weights else None
    np.testing.assert_array_equal(backend.run(ids, mask), first)
    assert backend._bf16_weights is not None and backend._bf16_weights._casts[0] is cast  # reused, not recast
    with torch.no_grad():
        model.head.linear.weight.add_(1.0)  # a fine-tune step changes weights in place: the copy must not go stale
    changed = backend.run(ids, mask)
    assert not np.array_equal(changed, first)
    np.testing.assert_array_equal(changed, per_call_autocast())
    assert TorchBackend(model, precision="fp32")._bf16_weights is None
