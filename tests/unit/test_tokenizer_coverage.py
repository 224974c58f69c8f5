"""The vocabulary check: how much of the data the model's tokenizer turns into unknown tokens, which scripts
the text is written in, and the warning (doctor and training) that names the multilingual model."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from fmkit.config import RunConfig
from fmkit.data.coverage import (
    MULTILINGUAL_MODEL,
    Coverage,
    evenly_spaced,
    measure_coverage,
    script_shares,
    unknown_token_warning,
)

ENGLISH_WORDS = ["the", "hotel", "is", "very", "good", "bad", "room", ".", "。"]
CHINESE = ["这家酒店很好。", "服务态度非常差。", "房间很干净。", "位置不错。"]
ENGLISH = ["the hotel is very good.", "the room is bad.", "very good hotel.", "the room is very good."]


@pytest.fixture(scope="module")
def english_tokenizer() -> Any:
    """A WordPiece vocabulary of a few English words: any other word, every Han character included, is [UNK]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *ENGLISH_WORDS])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    # As BERT does: a space around every Han character, so each one is a word of its own.
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


class NoUnknownTokenizer:
    """A byte-level tokenizer reads every string: it has no unknown token at all."""

    unk_token_id = None
    all_special_ids: tuple[int, ...] = ()

    def __call__(self, texts: list[str], **_: Any) -> dict[str, list[list[int]]]:
        return {"input_ids": [list(text.encode("utf-8")) for text in texts]}


def test_chinese_characters_are_unknown_to_an_english_vocabulary(english_tokenizer: Any) -> None:
    # 这家酒店很好。: 6 Han characters, all [UNK], and 。 (known); the English text: 6 known tokens.
    coverage = measure_coverage(english_tokenizer, ["这家酒店很好。", "the hotel is very good."])
    assert coverage == Coverage(texts=2, tokens=13, unknown=6, scripts={"Latin": 0.75, "Han": 0.25})
    assert coverage.unk_rate == 6 / 13
    assert coverage.dominant_script == "Latin"


def test_special_tokens_are_not_counted(english_tokenizer: Any) -> None:
    # [CLS]/[SEP] written in the text are special tokens, neither known words nor unknown ones.
    coverage = measure_coverage(english_tokenizer, ["[CLS] good 好 [SEP]"])
    assert (coverage.tokens, coverage.unknown) == (2, 1)


def test_a_tokenizer_without_an_unknown_token_has_none() -> None:
    coverage = measure_coverage(NoUnknownTokenizer(), ["这家酒店很好"])
    assert coverage.tokens == 18 and coverage.unknown == 0 and coverage.unk_rate == 0.0


def test_no_texts_measure_nothing(english_tokenizer: Any) -> None:
    coverage = measure_coverage(english_tokenizer, [])
    assert coverage == Coverage(texts=0, tokens=0, unknown=0, scripts={})
    assert coverage.unk_rate == 0.0 and coverage.dominant_script is None and unknown_token_warning(coverage, "m") is None


def test_the_sample_is_evenly_spaced_and_bounded(english_tokenizer: Any) -> None:
    texts = [f"text {i}" for i in range(10)]
    assert evenly_spaced(texts, 4) == ["text 0", "text 2", "text 5", "text 7"]
    assert evenly_spaced(texts, 50) == texts
    assert measure_coverage(english_tokenizer, ENGLISH * 1000, sample_size=300).texts == 300


def test_script_mix_of_a_hand_made_text() -> None:
    # Letters only: 5 Latin (two full-width), 4 kana (one half-width), 3 Cyrillic, 2 each of Han, Hangul,
    # Arabic and Greek (other); digits, punctuation, spaces and the emoji are not letters.
    shares = script_shares(["HeＬＬo, мир! 你好 カナかｶ", "한국 سل αβ 123 😀 。"])
    assert shares == {"Latin": 0.25, "Kana": 0.2, "Cyrillic": 0.15, "Han": 0.1, "Hangul": 0.1, "Arabic": 0.1,
                      "other": 0.1}
    assert list(shares) == ["Latin", "Kana", "Cyrillic", "Han", "Hangul", "Arabic", "other"]  # largest first
    assert script_shares(["123 !?"]) == {}


def test_the_summary_line() -> None:
    coverage = Coverage(texts=2000, tokens=1000, unknown=618, scripts={"Han": 0.93, "Latin": 0.066, "other": 0.004})
    assert coverage.summary() == ("2,000 texts: 61.8% of tokens are unknown to the model's vocabulary; "
                                  "characters 93% Han, 7% Latin")
    assert Coverage(texts=3, tokens=3, unknown=0, scripts={}).summary() == (
        "3 texts: 0.0% of tokens are unknown to the model's vocabulary; no letters")


def test_english_text_gets_no_warning(english_tokenizer: Any) -> None:
    coverage = measure_coverage(english_tokenizer, ENGLISH)
    assert coverage.unknown == 0
    assert unknown_token_warning(coverage, "all-MiniLM-L6-v2") is None


def test_chinese_text_gets_the_warning_naming_the_multilingual_model(english_tokenizer: Any) -> None:
    # 26 tokens: 22 Han characters (unknown) and 4 full stops (known).
    coverage = measure_coverage(english_tokenizer, CHINESE)
    assert (coverage.tokens, coverage.unknown, coverage.scripts) == (26, 22, {"Han": 1.0})
    message = unknown_token_warning(coverage, "all-MiniLM-L6-v2")
    assert message is not None
    assert message.startswith("84.6% of the tokens of 4 training texts are unknown to the vocabulary of all-MiniLM-L6-v2")
    assert "its letters are 100% Han" in message
    assert f"--model {MULTILINGUAL_MODEL}" in message and f"`model.name: {MULTILINGUAL_MODEL}`" in message
    assert MULTILINGUAL_MODEL == "multilingual-e5-small"


def test_the_threshold_is_five_percent() -> None:
    assert unknown_token_warning(Coverage(texts=1, tokens=100, unknown=5, scripts={"Latin": 1.0}), "m") is None
    assert unknown_token_warning(Coverage(texts=1, tokens=100, unknown=6, scripts={"Latin": 1.0}), "m") is not None


def test_the_multilingual_model_does_not_suggest_itself() -> None:
    coverage = Coverage(texts=1, tokens=10, unknown=5, scripts={"other": 1.0})
    message = unknown_token_warning(coverage, f"intfloat/{MULTILINGUAL_MODEL}")
    assert message is not None and "--model" not in message and "its letters" not in message  # 'other': unnamed
    assert message.endswith("Choose a model whose vocabulary covers this language.")


# --- where it is said: doctor, and the start of training ----------------------------------------------------

def write_csv(path: Path, texts: list[str], repeat: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for _ in range(repeat):
            writer.writerows([text, "pos" if i % 2 == 0 else "neg"] for i, text in enumerate(texts))
    return path


@pytest.fixture
def chinese_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "zh.csv", CHINESE, 6)


def test_doctor_shows_the_coverage_and_the_warning(tiny_model: Path, chinese_csv: Path, sentiment_csv: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from fmkit.workflows.doctor import doctor

    facts = doctor(RunConfig.model_validate({"model": {"name": str(tiny_model)}, "data": {"train": str(chinese_csv)}}))
    rows = facts["train"]["rows"]  # the texts training reads: the file less the held-out split
    assert facts["vocabulary"]["texts"] == rows and facts["vocabulary"]["scripts"] == {"Han": 1.0}
    assert facts["vocabulary"]["unk_rate"] == 1.0  # the tiny BERT knows neither Han characters nor 。
    assert any(MULTILINGUAL_MODEL in w for w in facts["warnings"])

    capsys.readouterr()
    assert main(["doctor", "--data", str(chinese_csv), "--model", str(tiny_model)]) == 0
    printed = capsys.readouterr().out
    assert (f"vocabulary: {rows} texts: 100.0% of tokens are unknown to the model's vocabulary; characters 100% Han\n"
            in printed)
    assert f"--model {MULTILINGUAL_MODEL}" in printed

    assert main(["doctor", "--data", str(sentiment_csv), "--model", str(tiny_model)]) == 0
    printed = capsys.readouterr().out
    assert "texts: 0.0% of tokens are unknown" in printed and MULTILINGUAL_MODEL not in printed


def test_training_on_chinese_with_minilm_warns_once_and_records_it(chinese_csv: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "--data", str(chinese_csv), "--model", "all-MiniLM-L6-v2", "--strategy", "linear-probe",
                 "--output", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if MULTILINGUAL_MODEL in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and "vocabulary of all-MiniLM-L6-v2" in err
    recorded = json.loads((run / "data.json").read_text(encoding="utf-8"))["warnings"]
    assert [w for w in recorded if MULTILINGUAL_MODEL in w] == [warnings[0].removeprefix("warning: ")]


def test_english_training_does_not_warn(tiny_model: Path, sentiment_csv: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.workflows.task_run import load_backbone

    warnings: list[str] = []
    cfg = RunConfig.model_validate({"model": {"name": str(tiny_model)}})
    load_backbone(cfg, texts=ENGLISH, warnings=warnings)
    assert warnings == [] and "warning" not in capsys.readouterr().err


def test_ner_checks_its_sentences_joined(tiny_model: Path, tmp_path: Path) -> None:
    import fmkit

    # One character per token, as Chinese CoNLL data is written.
    sentences = [[("银", "B-ORG"), ("行", "I-ORG"), ("很", "O"), ("好", "O")], [("王", "B-PER"), ("说", "O")]] * 6
    conll = tmp_path / "zh.conll"
    conll.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")
    overrides: dict[str, Any] = {"task.type": "ner", "strategy.name": "full", "train.progress": False,
                                 "data.max_length": 16}
    run = tmp_path / "run"
    result = fmkit.train(data=str(conll), model=str(tiny_model), epochs=1, output=str(run), **overrides)
    # 12 sentences, one held out: the check reads the 11 the model trains on.
    assert any("100.0% of the tokens of 11 training texts" in w and "100% Han" in w for w in result.warnings)
    assert json.loads((run / "data.json").read_text(encoding="utf-8"))["warnings"] == result.warnings
