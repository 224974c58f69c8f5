"""The ONNX path's tokenizer (tokenizer.json on `tokenizers` alone) gives transformers' ids exactly,
and an ONNX export predicts without importing torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmkit.models.rust_tokenizer import RustTokenizer, load_rust_tokenizer

TEXTS = [
    "Shares of Globex jumped 12% after a blowout quarter!",
    "the movie was awful",
    "   leading and trailing spaces   ",
    "Ünïcödé àccents, naïve café, Straße",
    "这家酒店很好。服务也不错",
    "emoji 😀👍🏽 and symbols ©®™ $100.50",
    "tabs\tand\nnewlines\r\nmixed",
    "a",
    "",
    "word " * 300,  # far over every max_length
    "UPPER lower MiXeD CaSe don't won't it's",
    "\u200bzero\u200bwidth\u00a0nbsp",
]


def bundled_minilm(tmp_path: Path) -> Path:
    """The default model's tokenizer as fmkit saves it next to a trained model (`save_pretrained`)."""
    from fmkit.models.backbone import load_tokenizer, resolve_model_path

    folder = tmp_path / "minilm-tokenizer"
    load_tokenizer(resolve_model_path("all-MiniLM-L6-v2")).save_pretrained(str(folder))
    return folder


@pytest.fixture(params=["tiny", "minilm"])
def tokenizer_folder(request: pytest.FixtureRequest, tiny_model: Path, tmp_path: Path) -> Path:
    return tiny_model if request.param == "tiny" else bundled_minilm(tmp_path)


@pytest.mark.parametrize("max_length", [4, 16, 128, None])
def test_ids_match_transformers_exactly(tokenizer_folder: Path, max_length: int | None) -> None:
    from fmkit.models.backbone import load_tokenizer

    reference = load_tokenizer(tokenizer_folder)
    light = load_rust_tokenizer(tokenizer_folder)
    assert isinstance(light, RustTokenizer) and light.pad_token_id == reference.pad_token_id
    truncation = max_length is not None
    want = reference(TEXTS, truncation=truncation, max_length=max_length, padding=False,
                     return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    # What fmkit's encoders ask (ids only, unpadded): the Rust tokenizer's own answer, transformers not loaded.
    got = light(TEXTS, truncation=truncation, max_length=max_length, return_attention_mask=False,
                return_token_type_ids=False)["input_ids"]
    assert got == want and light._full is None
    if max_length is not None:
        assert max(len(ids) for ids in got) == max_length  # the long text is cut, special tokens included


def test_truncation_side_left_is_kept(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from fmkit.models.backbone import load_tokenizer

    folder = tmp_path / "left"
    shutil.copytree(tiny_model, folder)
    config_path = folder / "tokenizer_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "truncation_side": "left"}))
    reference = load_tokenizer(folder)
    assert reference.truncation_side == "left"
    text = ["the movie was awful and the plot was bad"]
    want = reference(text, truncation=True, max_length=5)["input_ids"]
    got = load_rust_tokenizer(folder)(text, truncation=True, max_length=5)["input_ids"]
    assert got == want and got != load_tokenizer(tiny_model)(text, truncation=True, max_length=5)["input_ids"]


def test_without_a_folder_padding_and_single_strings_are_refused(tiny_model: Path) -> None:
    from tokenizers import Tokenizer

    light = RustTokenizer(Tokenizer.from_file(str(tiny_model / "tokenizer.json")), 0)
    with pytest.raises(AttributeError):
        light.decode([5, 6])
    with pytest.raises(ValueError, match="does not pad"):
        light(["x"], padding=True)
    with pytest.raises(TypeError, match="list of texts"):
        light("x")


def test_other_calls_are_the_transformers_tokenizers(tiny_model: Path) -> None:
    """A predictor's tokenizer is public (`fmkit.load(dir).tokenizer`): padding, tensors, decode and token
    attributes behave as transformers' do, loaded on first use."""
    from fmkit.models.backbone import load_tokenizer

    reference, light = load_tokenizer(tiny_model), load_rust_tokenizer(tiny_model)
    texts = ["the movie was great", "awful"]
    padded, want = light(texts, padding=True, return_tensors="np"), reference(texts, padding=True, return_tensors="np")
    assert sorted(padded) == sorted(want) and all((padded[k] == want[k]).all() for k in want)
    assert light("the movie")["input_ids"] == reference("the movie")["input_ids"]
    assert light.decode(padded["input_ids"][0], skip_special_tokens=True) == "the movie was great"
    assert light.unk_token_id == reference.unk_token_id and light.pad_token_id == reference.pad_token_id


def test_multilingual_e5_ids_match_transformers(tmp_path: Path) -> None:
    """The other bundled encoder: a SentencePiece vocabulary and the `query: ` prefix baked in by save_pretrained."""
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.multilingual import cached_folder_problem, e5_folder

    if cached_folder_problem(e5_folder()) is not None:
        pytest.skip("multilingual-e5-small is not converted on this machine")
    folder = tmp_path / "e5-tokenizer"
    load_tokenizer(e5_folder()).save_pretrained(str(folder))
    reference, light = load_tokenizer(folder), load_rust_tokenizer(folder)
    for max_length in (8, 128):
        want = reference(TEXTS, truncation=True, max_length=max_length, padding=False, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]
        got = light(TEXTS, truncation=True, max_length=max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
        assert got == want and light.pad_token_id == reference.pad_token_id
    assert reference.decode(want[1]).startswith("<s> query:")  # the prefix is in both


def test_an_onnx_export_predicts_without_torch_or_transformers(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    from fmkit.inference.export import export_onnx
    from fmkit.inference.predictor import Predictor
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=16).save_pretrained(model_dir,
                                                                                            load_tokenizer(tiny_model))
    export_onnx(model_dir, tmp_path / "onnx", quantize="int8")  # int8: the folder holds no torch weights
    texts = ["the movie was great", "awful plot", "word " * 40]
    expected = Predictor.load(tmp_path / "onnx").predict(texts)
    script = (
        "import json, sys\n"
        "from fmkit.inference import load_predictor\n"
        f"p = load_predictor({str(tmp_path / 'onnx')!r})\n"
        f"print(json.dumps(p.predict({texts!r})))\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    predictions, heavy = (json.loads(line) for line in proc.stdout.splitlines())
    assert heavy == [] and predictions == expected
