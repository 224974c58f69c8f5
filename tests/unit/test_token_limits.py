"""One max_length resolution for every task and the doctor: capped at what the model accepts, and said."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmkit.config import RunConfig
from fmkit.data.token_limits import max_length_note, position_limit, resolve_max_length, tokenizer_limit

UNSET = int(1e30)  # what transformers reports for a tokenizer saved without a limit


def model_folder(tmp_path: Path, **config: object) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("recorded", "expected"), [(512, 512), (UNSET, None), (None, None), (0, None), (True, None)])
def test_tokenizer_limit_reads_only_a_real_limit(recorded: object, expected: int | None) -> None:
    assert tokenizer_limit(SimpleNamespace(model_max_length=recorded)) == expected


def test_a_tokenizer_without_the_attribute_has_no_limit() -> None:
    assert tokenizer_limit(object()) is None


def test_position_table_caps_when_the_tokenizer_records_nothing(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, model_type="bert", max_position_embeddings=128)
    assert resolve_max_length(512, SimpleNamespace(model_max_length=UNSET), folder) == 128
    assert resolve_max_length(64, SimpleNamespace(model_max_length=UNSET), folder) == 64


def test_roberta_style_tables_hold_two_fewer_positions(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, model_type="xlm-roberta", max_position_embeddings=514, pad_token_id=1)
    assert position_limit(folder) == 512


def test_the_smaller_of_both_limits_wins(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, model_type="bert", max_position_embeddings=512)
    assert resolve_max_length(1024, SimpleNamespace(model_max_length=256), folder) == 256


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"max_position_embeddings": "512"}'])
def test_an_unreadable_config_is_no_limit(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.json").write_text(content, encoding="utf-8")
    assert position_limit(tmp_path) is None
    assert position_limit(tmp_path / "missing") is None


def test_the_note_names_the_setting_and_the_value_that_fits() -> None:
    tokenizer = SimpleNamespace(model_max_length=512)
    note = max_length_note(1024, tokenizer, setting="generation.max_length")
    assert note is not None and "generation.max_length 1024" in note and "--set generation.max_length=512" in note
    assert max_length_note(512, tokenizer) is None


def test_doctor_reports_the_length_training_would_use(tiny_model: Path, sentiment_csv: Path) -> None:
    from fmkit.workflows.classification import doctor

    # The tiny BERT's tokenizer records no limit; its position table has 128 entries.
    cfg = RunConfig.model_validate({"model": {"name": str(tiny_model)},
                                    "data": {"train": str(sentiment_csv), "max_length": 512}})
    facts = doctor(cfg)
    assert facts["tokens"]["max_length"] == 128
    assert any("data.max_length 512" in w and "(128 tokens)" in w for w in facts["warnings"])


def test_an_embedding_run_uses_and_records_the_capped_length(tiny_model: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import fmkit
    from tests.unit.test_embedding_training import write_pairs

    # Before: the embedding task took data.max_length as given (the other tasks capped it).
    run = tmp_path / "run"
    fmkit.train(data=str(write_pairs(tmp_path / "train.jsonl", 16, 0)), model=str(tiny_model), epochs=1,
                output=str(run), **{"task.type": "embedding", "strategy.name": "full", "train.progress": False,
                                    "train.batch_size": 8, "data.max_length": 512})
    assert json.loads((run / "data.json").read_text(encoding="utf-8"))["max_length"] == 128
    assert json.loads((run / "model" / "fmkit.json").read_text(encoding="utf-8"))["max_length"] == 128
    assert "data.max_length 512 is more than this model accepts (128 tokens)" in capsys.readouterr().err
