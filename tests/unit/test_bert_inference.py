"""fmkit's prediction-only BERT encoder (models/bert_inference.py) gives BertModel's hidden states and logits,
falls back to AutoModel for configs it does not reproduce, and `fmkit predict --backend torch` runs without
importing transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fmkit.models.bert_inference import LightBertEncoder, light_bert_config, load_light_bert
from tests.conftest import REPO

TOLERANCE = 1e-5  # fp32, max abs difference (the same ops in the same order: identical in practice)


def random_batch(vocab: int, rows: int = 5, length: int = 14, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids with right padding of several lengths (one row unpadded), as the predictor pads batches."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (rows, length), generator=generator)
    mask = torch.ones_like(ids)
    for row, keep in enumerate([length, 9, 3, 12, 1][:rows]):
        mask[row, keep:] = 0
        ids[row, keep:] = 0
    return ids, mask


def hf_encoder(folder: Path) -> Any:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder), use_safetensors=True).eval()


def test_hidden_states_equal_bert_models(tiny_model: Path) -> None:
    light, reference = load_light_bert(tiny_model), hf_encoder(tiny_model)
    assert isinstance(light, LightBertEncoder) and light.config.hidden_size == reference.config.hidden_size
    ids, mask = random_batch(reference.config.vocab_size)
    token_types = torch.zeros_like(ids)
    token_types[:, 5:] = 1  # a text pair: the second segment from position 5
    with torch.inference_mode():
        for attention_mask, types in [(None, None), (mask, None), (mask, token_types), (torch.ones_like(ids), None)]:
            want = reference(input_ids=ids, attention_mask=attention_mask, token_type_ids=types).last_hidden_state
            got = light(ids, attention_mask, token_type_ids=types).last_hidden_state
            assert got.shape == want.shape
            assert (got - want).abs().max().item() <= TOLERANCE
        # Padding changes the real tokens' states not at all, and the padded rows differ from the unpadded batch.
        padded = light(ids, mask).last_hidden_state
        alone = light(ids[2:3, :3]).last_hidden_state
        assert (padded[2, :3] - alone[0]).abs().max().item() <= TOLERANCE
        assert not torch.allclose(padded, light(ids).last_hidden_state)


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", pytest.param("multilingual-e5-small", marks=pytest.mark.slow)])
def test_the_bundled_encoders_load_light_with_equal_outputs(name: str) -> None:
    """Both bundled encoders are BertModel: their real weights and configs take the light path, same outputs."""
    from fmkit.models.backbone import bundled_minilm_path
    from fmkit.models.multilingual import cached_folder_problem, e5_folder

    if name == "multilingual-e5-small" and cached_folder_problem(e5_folder()) is not None:
        pytest.skip("multilingual-e5-small is not converted on this machine")
    folder = bundled_minilm_path() if name == "all-MiniLM-L6-v2" else e5_folder()
    light, reference = load_light_bert(folder), hf_encoder(folder)
    assert light is not None
    ids, mask = random_batch(reference.config.vocab_size, length=40)
    with torch.inference_mode():
        want = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        assert (light(ids, mask).last_hidden_state - want).abs().max().item() <= TOLERANCE


def test_bf16_autocast_equals_bert_models(tiny_model: Path) -> None:
    from fmkit.models.precision import Bf16LinearWeightsForInference

    light, reference = load_light_bert(tiny_model), hf_encoder(tiny_model)
    assert light is not None
    ids, mask = random_batch(reference.config.vocab_size)
    outputs = []
    for model in (light, reference):
        weights = Bf16LinearWeightsForInference(model)
        with weights.active(), torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            outputs.append(model(input_ids=ids, attention_mask=mask).last_hidden_state.float())
        # nn.Linear layers, so the bf16 path swaps their weights; the fp32 originals are back afterwards.
        assert weights._params and all(p.dtype == torch.float32 for p in weights._params)
    assert (outputs[0] - outputs[1]).abs().max().item() <= TOLERANCE


def save_classifier(backbone: Path, folder: Path, pair_sep_id: int | None = None) -> Path:
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    torch.manual_seed(1)
    model = TextClassifier.from_backbone(backbone, ["neg", "neutral", "pos"], max_length=16)
    model.pair_sep_id = pair_sep_id
    model.save_pretrained(folder, load_tokenizer(backbone))
    return folder


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_logits_and_embeddings_equal_the_transformers_models(tiny_model: Path, tmp_path: Path, precision: str) -> None:
    from fmkit.inference.backends import TorchBackend
    from fmkit.models.classifier import TextClassifier

    folder = save_classifier(tiny_model, tmp_path / "model", pair_sep_id=3)  # [SEP]: pairs get token types
    light = TextClassifier.from_pretrained(folder, for_inference=True)
    reference = TextClassifier.from_pretrained(folder)
    assert isinstance(light.encoder, LightBertEncoder) and not isinstance(reference.encoder, LightBertEncoder)
    ids, mask = random_batch(int(reference.encoder.config.vocab_size))
    ids[:, 4] = 3  # a separator inside every row: segment 1 after it
    for want in ("logits", "embedding"):
        got, expected = (TorchBackend(m, threads=None, precision=precision).run(ids.numpy(), mask.numpy(), want)
                         for m in (light, reference))
        assert got.shape == expected.shape and np.abs(got - expected).max() <= TOLERANCE


def test_it_refuses_to_train_or_save(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.errors import ModelError
    from fmkit.models.classifier import TextClassifier

    model = TextClassifier.from_pretrained(save_classifier(tiny_model, tmp_path / "model"), for_inference=True)
    model.eval()  # what every prediction path does
    with pytest.raises(ModelError, match="prediction only"):
        model.train()
    with pytest.raises(ModelError, match="prediction only"):
        model.save_pretrained(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # refused before anything is written


@pytest.mark.parametrize("change", [
    {"hidden_act": "gelu_new"},
    {"position_embedding_type": "relative_key"},
    {"is_decoder": True},
    {"model_type": "roberta"},
    {"dtype": "bfloat16"},
    {"an_option_from_a_later_version": 1},
])
def test_configs_it_does_not_reproduce_are_left_to_transformers(tiny_model: Path, change: dict[str, Any]) -> None:
    raw = json.loads((tiny_model / "config.json").read_text())
    assert light_bert_config(raw) is not None
    assert light_bert_config({**raw, **change}) is None


def test_unusual_weights_are_left_to_transformers(tiny_model: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_model / "model.safetensors"))
    for name, edit in [("half", {k: v.half() for k, v in tensors.items()}),
                       ("missing", {k: v for k, v in tensors.items() if "layer.1.output.dense" not in k}),
                       ("prefixed", {f"bert.{k}": v for k, v in tensors.items()})]:
        folder = tmp_path / name
        shutil.copytree(tiny_model, folder)
        save_file(edit, str(folder / "model.safetensors"))
        light = load_light_bert(folder)
        # A task model's "bert." names are BertModel's too; fp16 or missing weights are not this module's case.
        assert (light is not None) == (name == "prefixed"), name
    assert load_light_bert(tmp_path / "no-such-folder") is None


def test_a_fallback_config_predicts_with_the_transformers_encoder(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.inference.predictor import Predictor

    backbone = tmp_path / "gelu-new"
    shutil.copytree(tiny_model, backbone)
    config = json.loads((backbone / "config.json").read_text())
    (backbone / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu_new"}))
    folder = save_classifier(backbone, tmp_path / "model")
    predictor = Predictor.load(folder, backend="torch")
    assert predictor.model is not None and not isinstance(predictor.model.encoder, LightBertEncoder)
    assert type(predictor.model.encoder).__name__ == "BertModel"
    assert len(predictor.predict(["the movie was great"])) == 1


def test_torch_prediction_never_imports_transformers(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.inference.predictor import Predictor
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    folder = save_classifier(tiny_model, tmp_path / "model")
    texts = ["the movie was great", "awful plot and a boring story", "word " * 40, ""]
    (tmp_path / "texts.txt").write_text("\n".join(texts[:3]) + "\n")
    # Expected: the Hugging Face encoder and tokenizer, as before this module.
    reference = Predictor(TextClassifier.from_pretrained(folder), load_tokenizer(folder), path=folder)
    expected = [{"text": t, **r} for t, r in zip(texts[:3], reference.predict(texts[:3]), strict=True)]
    assert Predictor.load(folder, backend="torch").predict(texts) == reference.predict(texts)
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))"
        ", file=sys.stderr))\n"
        "from fmkit.cli import main\n"
        f"sys.exit(main(['predict', {str(folder)!r}, {str(tmp_path / 'texts.txt')!r}, '--backend', 'torch']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == expected
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
