"""The cheaper CPU dropout: same distribution and scaling as torch's, same RNG, model restored afterwards."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from fmkit.models.cpu_dropout import ATTENTION_NAME, FastDropout, drop, fast_cpu_dropout, keep_mask


def test_keep_rate_matches_p() -> None:
    torch.manual_seed(0)
    for p in (0.1, 0.3, 0.5):
        kept = keep_mask(torch.Size([1000, 1001]), p, torch.device("cpu")).float().mean().item()
        # 1e6 Bernoulli draws: standard error ~5e-4, so 3e-3 is > 5 sigma.
        assert abs(kept - (1 - p)) < 3e-3, (p, kept)


def test_masks_are_independent_between_positions() -> None:
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([200_000, 4]), 0.5, torch.device("cpu")).float()
    # The four draws cut from one random word must not be correlated.
    corr = torch.corrcoef(mask.T)
    off_diagonal = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max().item() < 0.01


def test_scaling_and_gradient() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 64, requires_grad=True)
    y = drop(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad != 0, kept)
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.75))


def test_eval_mode_and_zero_p_are_identity() -> None:
    x = torch.randn(8, 8)
    layer = FastDropout(0.5).eval()
    assert layer(x) is x
    assert drop(x, 0.0) is x


def test_same_seed_same_mask() -> None:
    torch.manual_seed(3)
    a = keep_mask(torch.Size([50, 50]), 0.1, torch.device("cpu"))
    torch.manual_seed(3)
    b = keep_mask(torch.Size([50, 50]), 0.1, torch.device("cpu"))
    assert torch.equal(a, b)


def tiny_bert() -> BertModel:
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, attn_implementation="sdpa")
    return BertModel(config)


def padded_batch(rows: int, width: int, short_row: int, short_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids and an attention mask where one row is shorter (padded)."""
    ids = torch.randint(0, 50, (rows, width))
    mask = torch.ones(rows, width, dtype=torch.long)
    mask[short_row, short_length:] = 0
    return ids, mask


def test_swap_trains_with_fast_dropout_and_restores_model() -> None:
    torch.manual_seed(0)
    model = tiny_bert()
    ids, mask = padded_batch(4, 10, short_row=0, short_length=6)
    before = {name: type(module) for name, module in model.named_modules()}
    model.eval()
    reference = model(input_ids=ids, attention_mask=mask).last_hidden_state
    with fast_cpu_dropout(model):
        assert model.config._attn_implementation == ATTENTION_NAME
        assert any(isinstance(m, FastDropout) for m in model.modules())
        # In eval mode the swapped model computes exactly what the original does.
        assert torch.allclose(model(input_ids=ids, attention_mask=mask).last_hidden_state, reference, atol=1e-6)
        model.train()
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
        out.sum().backward()
        assert all(p.grad is not None for p in model.encoder.parameters())
    assert model.config._attn_implementation == "sdpa"
    assert {name: type(module) for name, module in model.named_modules()} == before
    assert model.training  # the mode set inside the block is kept


def test_training_attention_matches_sdpa_math_without_dropout() -> None:
    """With the dropout mask forced to keep everything, our attention equals SDPA's."""
    torch.manual_seed(0)
    model = tiny_bert()
    ids, mask = padded_batch(3, 7, short_row=1, short_length=4)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 1e-9  # "on", so the training path runs, but keeps every unit
    model.train()
    expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
    with fast_cpu_dropout(model):
        got = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)


def test_disabled_leaves_model_alone() -> None:
    model = tiny_bert()
    with fast_cpu_dropout(model, enabled=False):
        assert not any(isinstance(m, FastDropout) for m in model.modules())
        assert model.config._attn_implementation == "sdpa"


def test_training_loop_uses_fast_dropout_on_cpu_and_restores_the_model() -> None:
    from fmkit.config.schema import TrainConfig
    from fmkit.training import make_accelerator, train_loop
    from fmkit.training.memory_checkpoints import MemoryCheckpoints

    torch.manual_seed(0)
    model = tiny_bert()
    seen: list[tuple[bool, str]] = []

    def loss_fn(outputs: object, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.append((any(isinstance(m, FastDropout) for m in model.modules()), model.config._attn_implementation))
        return outputs.last_hidden_state.pow(2).mean()  # type: ignore[attr-defined]

    ids = torch.randint(0, 50, (8, 6))
    loader = torch.utils.data.DataLoader(
        [{"input_ids": row, "attention_mask": torch.ones_like(row)} for row in ids], batch_size=4)
    loader.batch_sampler.set_epoch = lambda epoch: None  # type: ignore[union-attr]  # the loop's sampler API
    for enabled, expected in ((True, (True, ATTENTION_NAME)), (False, (False, "sdpa"))):
        seen.clear()
        cfg = TrainConfig(epochs=1, progress=False, early_stopping_patience=0, fast_cpu_dropout=enabled,
                          mixed_precision="no")
        train_loop(model, loader, cfg=cfg, loss_fn=loss_fn, evaluate=lambda m: {"score": 0.0}, primary_metric="score",
                   checkpoints=MemoryCheckpoints(), tracker=_NullTracker(), accelerator=make_accelerator(cfg))  # type: ignore[arg-type]
        assert seen and set(seen) == {expected}
        assert not any(isinstance(m, FastDropout) for m in model.modules())
        assert model.config._attn_implementation == "sdpa"


class _NullTracker:
    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        pass

    def close(self, status: str) -> None:
        pass


def test_training_without_attention_dropout_takes_the_math_path_with_sdpa_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attention dropout 0 (hidden dropout off too, so outputs are comparable): while gradients flow, the math
    path replaces SDPA (whose CPU backward is slow) with the same outputs and gradients; frozen inputs keep SDPA."""
    import transformers.integrations.sdpa_attention as sdpa_module

    torch.manual_seed(0)
    model = tiny_bert()
    ids, mask = padded_batch(3, 7, short_row=1, short_length=4)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.train()
    expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
    expected.sum().backward()
    expected_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()

    sdpa_calls = []
    real_sdpa = sdpa_module.sdpa_attention_forward

    def counting_sdpa(*args: Any, **kwargs: Any) -> Any:
        sdpa_calls.append(1)
        return real_sdpa(*args, **kwargs)

    monkeypatch.setattr(sdpa_module, "sdpa_attention_forward", counting_sdpa)
    with fast_cpu_dropout(model):
        got = model(input_ids=ids, attention_mask=mask).last_hidden_state
        got.sum().backward()
        assert not sdpa_calls  # two layers, both on the math path
        got_grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert torch.allclose(got, expected, atol=1e-5)
        assert len(got_grads) == len(expected_grads)
        assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got_grads, expected_grads, strict=True))
        model.requires_grad_(False)  # nothing to train through attention: SDPA, forward-only, is faster
        model(input_ids=ids, attention_mask=mask)
        assert len(sdpa_calls) == 2
