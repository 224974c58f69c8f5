"""Continued masked-LM pretraining on the tiny random BERT: masking, the loop, a reusable backbone folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fmkit.cli import build_parser, main
from fmkit.data.tasks.mlm import IGNORE_INDEX, MaskingCollator
from fmkit.data.tokenized import encode_texts
from fmkit.models.backbone import load_tokenizer
from fmkit.models.losses import masked_lm_loss
from fmkit.models.mlm import MaskedLanguageModel
from tests.conftest import write_sentiment_csv


def test_masking_touches_only_real_tokens(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    texts = ["the movie was really very good and the plot is great"] * 40 + ["bad"]
    enc = encode_texts(tok, texts, 32)
    batch = MaskingCollator(enc, tok, probability=0.3, seed=0)(list(range(len(texts))))
    labels, mask = batch["labels"].numpy(), batch["attention_mask"].numpy()
    chosen = labels != IGNORE_INDEX
    special = np.isin(np.asarray(enc.input_ids[0]), tok.all_special_ids)
    assert not chosen[:, 0].any() and not chosen[mask == 0].any()  # never [CLS] or padding
    assert not chosen[0][: len(special)][special].any()
    share = chosen.sum() / ((mask == 1).sum() - 2 * len(texts))
    assert 0.2 < share < 0.4
    masked = batch["input_ids"].numpy()[chosen] == tok.mask_token_id
    assert 0.65 < masked.mean() < 0.95  # ~80% become [MASK], the rest random or unchanged
    again = MaskingCollator(enc, tok, probability=0.3, seed=0)(list(range(len(texts))))
    assert np.array_equal(again["labels"].numpy(), labels)  # same masks for the same batch: stable perplexity
    assert np.array_equal(batch["predict_mask"].numpy(), chosen)


def test_masked_positions_only_give_the_same_logits_loss_and_gradients(tiny_model: Path) -> None:
    tok = load_tokenizer(tiny_model)
    texts = ["the movie was really very good", "a bad plot", "great acting and a great story"] * 4
    batch = MaskingCollator(encode_texts(tok, texts, 32), tok, probability=0.3, seed=1)(list(range(len(texts))))
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_backbone(tiny_model).eval()
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    sparse = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   predict_mask=batch["predict_mask"])
    assert model._prediction_head() is not None  # the sparse path, not the fallback
    assert full.dim() == 3 and sparse.shape == (int(batch["predict_mask"].sum()), full.shape[-1])
    torch.testing.assert_close(sparse, full[batch["predict_mask"]], atol=1e-5, rtol=1e-5)
    full_loss, sparse_loss = masked_lm_loss(full, batch), masked_lm_loss(sparse, batch)
    torch.testing.assert_close(sparse_loss, full_loss, atol=1e-6, rtol=1e-6)
    grads = []
    for loss_of in (lambda: masked_lm_loss(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]), batch),
                    lambda: masked_lm_loss(model(**{k: batch[k] for k in ("input_ids", "attention_mask", "predict_mask")}), batch)):
        model.zero_grad()
        loss_of().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-4)


def test_pretrain_cli_writes_a_backbone_any_strategy_accepts(tiny_model: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.txt"
    csv_path = write_sentiment_csv(tmp_path / "train.csv", n=60)
    corpus.write_text("\n".join(line.split(",")[0] for line in csv_path.read_text().splitlines()[1:]) + "\n")
    out = tmp_path / "pre"
    code = main(["pretrain", "--data", str(corpus), "--model", str(tiny_model), "--output", str(out), "--epochs", "2",
                 "--batch-size", "8", "--lr", "1e-3", "--quiet", "--set", "train.threads=1"])
    assert code == 0
    assert "no masked-LM head" in capsys.readouterr().err  # the new head is announced
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["perplexity"] < metrics["perplexity_before"]
    assert "cls.predictions.transform.dense.weight" in metrics["new_weights"]
    from transformers import AutoModel

    AutoModel.from_pretrained(str(out / "model"))  # the body loads as a plain encoder
    code = main(["train", "--data", str(csv_path), "--model", str(out / "model"), "--strategy", "linear-probe",
                 "--output", str(tmp_path / "clf"), "--quiet", "--set", "train.threads=1"])
    assert code == 0


def test_pretrain_is_a_task_on_the_shared_run_frame(tiny_model: Path, tmp_path: Path) -> None:
    """`fmkit train --task pretrain` runs the same workflow as `fmkit pretrain`, with the same run records as
    every task: config, data.json (the corpus hash), env.json, run.json and a registry row."""
    from fmkit.tracking import Registry

    csv_path = write_sentiment_csv(tmp_path / "train.csv", n=40)
    runs = tmp_path / "runs"
    code = main(["train", "--task", "pretrain", "--data", str(csv_path), "--model", str(tiny_model), "--output",
                 str(runs / "pre"), "--epochs", "1", "--batch-size", "8", "--quiet", "--set", "train.threads=1"])
    assert code == 0
    run = runs / "pre"
    data = json.loads((run / "data.json").read_text())
    assert len(data["train"]["sha256"]) == 64 and data["train"]["texts"] + data["held_out_texts"] == 40
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "finished" and status["command"] == "pretrain"
    assert (run / "config.yaml").read_text().count("type: pretrain") == 1
    assert [r.command for r in Registry(runs).runs()] == ["pretrain"]
    assert (run / "model" / "config.json").is_file()


def test_pretrain_rejects_a_tiny_corpus(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("one line\ntwo lines\n")
    code = main(["pretrain", "--data", str(corpus), "--model", str(tiny_model), "--output", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2 and "at least" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()  # nothing written before the data is accepted


def test_train_help_lists_strategy_flags() -> None:
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()  # type: ignore[union-attr]
    for flag in ("--strategy", "--time-budget", "--label-descriptions"):
        assert flag in text


def test_head_warmup_trains_only_the_new_head(tiny_model: Path) -> None:
    from fmkit.config import load_config
    from fmkit.data.tasks.mlm import make_mlm_loader
    from fmkit.workflows.pretrain import warm_up_new_head

    tok = load_tokenizer(tiny_model)
    texts = ["the movie was really very good", "a bad plot", "great acting and a great story"] * 8
    loader = make_mlm_loader(encode_texts(tok, texts, 32), tok, 8, seed=0, shuffle=True, probability=0.3)
    torch.manual_seed(0)
    model = MaskedLanguageModel.from_backbone(tiny_model)
    assert model.new_weights  # the tiny backbone, like all-MiniLM-L6-v2, ships no MLM head
    before = {k: v.clone() for k, v in model.mlm.state_dict().items()}
    cfg = load_config(None, {"pretrain.head_warmup_epochs": 1.0, "train.progress": False, "train.threads": 1})

    result = warm_up_new_head(model, loader, cfg, lambda m: {"loss": 0.0}, _NullTracker())
    assert result is not None and result.steps == 3
    after = model.mlm.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= set(model.new_weights), changed - set(model.new_weights)
    assert all(p.requires_grad for p in model.parameters())  # the body trains next
    cfg_off = load_config(None, {"pretrain.head_warmup_epochs": 0})
    assert warm_up_new_head(model, loader, cfg_off, lambda m: {}, _NullTracker()) is None


class _NullTracker:
    def log(self, step: int, metrics: dict[str, object], kind: str) -> None:
        pass

    def close(self, status: str) -> None:
        pass
