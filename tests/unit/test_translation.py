"""--task translation: column detection, prompts, loss masking, metrics, the training run, `fmkit translate`,
`fmkit predict`/`eval` and POST /v1/translate, on a tiny random Gemma 3 (2 layers, hidden 32) with a character
tokenizer built here. The real Gemma 3 270M run is bench/translation.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fmkit.cli import main
from fmkit.config.translation import TranslationConfig
from fmkit.data.tasks.generation import IGNORE_INDEX
from fmkit.data.tasks.translation import (
    Direction,
    TranslationPair,
    bos_prefix,
    build_prompt,
    encode_pair,
    read_translation_pairs,
    split_pairs,
)
from fmkit.errors import DataError
from fmkit.evaluation.translation import translation_scores
from fmkit.models.translation_lm import (
    TranslationLMForTraining,
    make_target_loader,
    newline_token_ids,
    target_loss,
)

PAIRS = [("我们明天见。", "See you tomorrow."), ("我喜欢茶。", "I like tea."), ("他很高兴。", "He is happy."),
         ("你好。", "Hello."), ("谢谢你。", "Thank you."), ("她在家。", "She is at home.")]
TEMPLATE = TranslationConfig().prompt_template


def char_tokenizer(extra_text: str = "") -> Any:
    """One token per character (Latin, Han, punctuation, space, newline), BOS added like Gemma's."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    text = "".join(a + b for a, b in PAIRS) + TEMPLATE + "ChineseEnglish: \n" + extra_text
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(text)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    folder = tmp_path_factory.mktemp("tiny-gemma")
    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                              sliding_window=16, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    Gemma3ForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# --- data: columns, directions, splits --------------------------------------------------------------------------

def test_language_columns_give_both_directions(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"zh": z, "en": e} for z, e in PAIRS[:2]])
    pairs = read_translation_pairs(path, TranslationConfig())
    assert [(p.direction.name, p.source, p.target) for p in pairs] == [
        ("zh-en", "我们明天见。", "See you tomorrow."), ("zh-en", "我喜欢茶。", "I like tea."),
        ("en-zh", "See you tomorrow.", "我们明天见。"), ("en-zh", "I like tea.", "我喜欢茶。")]
    one_way = read_translation_pairs(path, TranslationConfig(direction="en-zh"))
    assert [(p.direction.name, p.source) for p in one_way] == [("en-zh", "See you tomorrow."), ("en-zh", "I like tea.")]


def test_source_target_columns_take_languages_from_direction_or_script(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("source,target\n" + "".join(f"{e},{z}\n" for z, e in PAIRS[:3]).replace("tomorrow.", "tomorrow"),
                    encoding="utf-8")
    guessed = read_translation_pairs(path, TranslationConfig())
    assert {p.direction for p in guessed} == {Direction("en", "zh")}
    assert guessed[1].source == "I like tea." and guessed[1].target == "我喜欢茶。"
    named = read_translation_pairs(path, TranslationConfig(direction="de-fr"))
    assert named[0].direction.source_language == "German" and named[0].direction.target_language == "French"


def test_headerless_tatoeba_tsv_is_named_by_script(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    # Tatoeba's layout: English<TAB>Chinese, no header; a line starting with a quote must stay as written.
    path.write_text('"Hi," he said.\t他说："嗨。"\nI like tea.\t我喜欢茶。\n', encoding="utf-8")
    pairs = read_translation_pairs(path, TranslationConfig(direction="zh-en"))
    assert [(p.source, p.target) for p in pairs] == [('他说："嗨。"', '"Hi," he said.'), ("我喜欢茶。", "I like tea.")]


def test_a_file_without_source_and_target_names_the_columns_found(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "你好", "label": "greeting"}])
    with pytest.raises(DataError, match="Columns found: text, label"):
        read_translation_pairs(path, TranslationConfig())
    code = main(["train", "--task", "translation", "--data", str(path), "--output", str(tmp_path / "run")])
    assert code == 2 and not (tmp_path / "run").exists()


def test_a_direction_the_columns_lack_is_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"zh": "你好。", "en": "Hello."}])
    with pytest.raises(DataError, match="needs a column for de; languages found: zh, en"):
        read_translation_pairs(path, TranslationConfig(direction="de-en"))


def test_bad_direction_and_template_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="SRC-TGT"):
        TranslationConfig(direction="chinese")
    with pytest.raises(ValueError, match="must contain"):
        TranslationConfig(prompt_template="Translate:")


def test_split_keeps_both_directions_of_a_pair_on_one_side(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"zh": z, "en": e} for z, e in PAIRS])
    train, held = split_pairs(read_translation_pairs(path, TranslationConfig()), 0.34, seed=0)
    held_sentences = {p.source for p in held} | {p.target for p in held}
    assert len(held) == 4 and not any(p.source in held_sentences for p in train)


# --- prompts and loss masking -----------------------------------------------------------------------------------

def test_prompt_has_bos_worked_examples_then_the_sentence() -> None:
    tok = char_tokenizer()
    d = Direction("zh", "en")
    prompt = build_prompt(tok, TEMPLATE, d, "你好。", [TranslationPair("谢谢你。", "Thank you.", d)])
    assert bos_prefix(tok) == "<bos>"
    assert prompt == ("<bos>Translate Chinese to English.\nChinese: 谢谢你。\nEnglish: Thank you.\n\n"
                      "Translate Chinese to English.\nChinese: 你好。\nEnglish:")


def test_only_target_tokens_and_eos_carry_labels() -> None:
    tok = char_tokenizer()
    pair = TranslationPair("你好。", "Hello.", Direction("zh", "en"))
    ids, labels = encode_pair(tok, pair, TEMPLATE, max_length=128)
    prompt_len = len(tok(build_prompt(tok, TEMPLATE, pair.direction, pair.source), add_special_tokens=False)["input_ids"])
    assert ids[0] == tok.bos_token_id
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert tok.decode(labels[prompt_len:-1]) == " Hello." and labels[-1] == tok.eos_token_id
    assert ids[prompt_len:] == labels[prompt_len:]


def test_a_long_pair_keeps_bos_and_the_prompt_end_within_max_length() -> None:
    tok = char_tokenizer("x")
    pair = TranslationPair("你好。" * 20, "Hello.", Direction("zh", "en"))
    ids, _ = encode_pair(tok, pair, TEMPLATE, max_length=32)
    assert len(ids) == 32 and ids[0] == tok.bos_token_id
    assert tok.decode(ids[: -len(" Hello.") - 1]).endswith("English:")


def test_loss_counts_target_tokens_only(tiny_gemma: Path) -> None:
    """The loss over the selected positions equals full-logit cross-entropy with prompt labels ignored; changing
    a prompt-only label value cannot change it."""
    from transformers import AutoModelForCausalLM

    from fmkit.data.tasks.translation import encode_translation

    tok = char_tokenizer()
    lm = AutoModelForCausalLM.from_pretrained(str(tiny_gemma))
    pairs = [TranslationPair(z, e, Direction("zh", "en")) for z, e in PAIRS[:3]]
    encoded = encode_translation(tok, pairs, TEMPLATE, 128)
    batch = next(iter(make_target_loader(encoded, 0, 3, 0, shuffle=False)))
    model = TranslationLMForTraining(lm)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], predict_mask=batch["predict_mask"])
    assert logits.shape[0] == encoded.completion_tokens()
    full = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected = torch.nn.functional.cross_entropy(full[:, :-1].reshape(-1, full.size(-1)),
                                                 batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
    assert torch.allclose(target_loss(logits, batch), expected, atol=1e-5)


def test_newline_tokens_are_found() -> None:
    tok = char_tokenizer()
    assert newline_token_ids(tok).tolist() == [tok.convert_tokens_to_ids("\n")]


# --- metrics ----------------------------------------------------------------------------------------------------

def test_bleu_and_chrf_are_perfect_for_exact_and_tokenise_chinese_by_character() -> None:
    assert translation_scores(["我喜欢茶。"], ["我喜欢茶。"], "zh") == {"bleu": 100.0, "chrf": 100.0}
    partial = translation_scores(["我喜欢咖啡。"], ["我喜欢茶。"], "zh")
    assert 0 < partial["chrf"] < 100 and 0 < partial["bleu"] < 100  # shared characters count without spaces
    assert translation_scores(["a b c d"], ["w x y z"], "en") == {"bleu": 0.0, "chrf": 0.0}


# --- the run, translate, predict, eval, serve ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(tiny_gemma: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("translation-run")
    data = write_jsonl(root / "train.jsonl", [{"zh": z, "en": e} for z, e in PAIRS])
    run = root / "run"
    code = main(["train", "--task", "translation", "--model", str(tiny_gemma), "--data", str(data), "--epochs", "1",
                 "--batch-size", "4", "--output", str(run), "--quiet", "--tracking", "none",
                 "--set", "translation.max_new_tokens=6", "--set", "translation.base_few_shot=1",
                 "--set", "train.mixed_precision=no", "--set", "data.eval_fraction=0.34"])
    assert code == 0
    return run


def test_training_writes_scores_samples_and_a_translation_model(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["directions"] == ["zh-en", "en-zh"]
    for key in ("chrf_zh-en", "bleu_en-zh", "base_chrf_zh-en", "base_bleu_en-zh", "chrf", "base_chrf"):
        assert 0.0 <= metrics[key] <= 100.0
    assert metrics["translated_sentences"] == {"zh-en": 2, "en-zh": 2}
    samples = [json.loads(line) for line in (trained_run / "translation_samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(samples) == 4 and set(samples[0]) == {"direction", "source", "reference", "base_model", "tuned_model"}
    meta = json.loads((trained_run / "model" / "fmkit.json").read_text(encoding="utf-8"))
    assert meta["task"] == "translation" and meta["directions"] == ["zh-en", "en-zh"] and meta["prompt_template"] == TEMPLATE
    assert (trained_run / "adapters").is_dir()
    report = (trained_run / "report.html").read_text(encoding="utf-8")
    assert "Translation quality" in report and "Translations side by side" in report


def test_translate_cli_picks_the_direction_by_script(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["translate", str(trained_run), "我喜欢茶。", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["direction"] == "zh-en" and record["text"] == "我喜欢茶。" and "\n" not in record["translation"]
    assert main(["translate", str(trained_run), "I like tea.", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["direction"] == "en-zh"
    assert main(["translate", str(trained_run), "I like tea.", "--direction", "de-en"]) == 2


def test_predict_on_a_file_and_eval(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "in.txt"
    inputs.write_text("我喜欢茶。\nHello.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(trained_run), str(inputs), "--output", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["direction"] for r in records] == ["zh-en", "en-zh"] and all("translation" in r for r in records)
    data = write_jsonl(tmp_path / "test.jsonl", [{"zh": z, "en": e} for z, e in PAIRS[:2]])
    capsys.readouterr()
    assert main(["eval", str(trained_run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["translated_sentences"] == {"zh-en": 2, "en-zh": 2} and 0 <= metrics["chrf_en-zh"] <= 100


def test_translate_route(trained_run: Path) -> None:
    from fastapi.testclient import TestClient

    from fmkit.inference.server import create_app
    from fmkit.inference.translation import TranslationPredictor

    app = create_app(TranslationPredictor.load(trained_run), task="translation")
    with TestClient(app) as client:
        answer = client.post("/v1/translate", json={"texts": ["我喜欢茶。", "Hello."]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [t["direction"] for t in body["translations"]] == ["zh-en", "en-zh"]
        assert [t["text"] for t in body["translations"]] == ["我喜欢茶。", "Hello."]
        named = client.post("/v1/translate", json={"texts": ["Hello."], "direction": "en-zh", "max_new_tokens": 2})
        assert named.status_code == 200 and named.json()["translations"][0]["direction"] == "en-zh"
        assert client.post("/v1/translate", json={"texts": ["Hello."], "direction": "de-en"}).status_code == 422
        assert client.post("/v1/translate", json={"texts": []}).status_code == 422
