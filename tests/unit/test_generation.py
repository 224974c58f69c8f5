"""Generation: data parsing, chat templating with prompt-masked labels, packing, loss, metrics, a tiny LoRA run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fmkit.config.schema import LoraSection
from fmkit.data.tasks.generation import (
    IGNORE_INDEX,
    EncodedGeneration,
    encode_example,
    make_lm_loader,
    pack,
    parse_record,
    prompt_text,
    read_generation_jsonl,
)
from fmkit.errors import DataError
from fmkit.evaluation.generation import exact_match, mean_rouge_l, perplexity, rouge_l
from fmkit.models.causal_lm import LMForTraining, causal_lm_loss, load_causal_lm, load_lm_tokenizer
from fmkit.models.lora import add_lora
from tests.media_helpers import build_tiny_llama, write_colour_jsonl


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_parse_prompt_completion_and_messages() -> None:
    a = parse_record({"prompt": "q", "completion": "a"}, "f, line 1", True)
    assert a.messages == [{"role": "user", "content": "q"}] and a.completion == "a"
    b = parse_record({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "a"}]}, "f, line 2", True)
    assert [m["role"] for m in b.messages] == ["system", "user"] and b.completion == "a"
    c = parse_record({"input": "q", "output": "a"}, "f, line 3", True)
    assert c.completion == "a"


@pytest.mark.parametrize("record, fragment", [
    ({"prompt": "q"}, "no 'completion'"),
    ({"text": "q"}, "no prompt"),
    ({"messages": [{"role": "user", "content": "q"}]}, "last message must be the assistant"),
    ({"messages": "q"}, "'messages' must be a list"),
    ({"prompt": "q", "completion": "  "}, "empty completion"),
])
def test_parse_errors_name_the_line(record: dict, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment) as info:
        parse_record(record, "data.jsonl, line 7", True)
    assert "data.jsonl, line 7" in info.value.message


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d.jsonl, line 2: not valid JSON"):
        read_generation_jsonl(path)


def test_labels_cover_only_the_completion(tiny_llama: Path, tmp_path: Path) -> None:
    tok = load_lm_tokenizer(tiny_llama)
    example = read_generation_jsonl(write_colour_jsonl(tmp_path / "c.jsonl", 3))[0]
    ids, labels = encode_example(tok, example, 64)
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens[-4:] == ["assistant", "blue", ".", "<|im_end|>"]  # chat template applied, EOS closes the answer
    labelled = [t for t, lab in zip(tokens, labels, strict=True) if lab != IGNORE_INDEX]
    assert labelled == ["blue", ".", "<|im_end|>"]


def test_truncation_cuts_the_prompt_start_not_the_answer(tiny_llama: Path, tmp_path: Path) -> None:
    tok = load_lm_tokenizer(tiny_llama)
    example = read_generation_jsonl(write_colour_jsonl(tmp_path / "c.jsonl", 3))[0]
    ids, labels = encode_example(tok, example, 8)
    assert len(ids) == 8
    assert tok.convert_ids_to_tokens(ids)[-3:] == ["blue", ".", "<|im_end|>"]
    assert sum(lab != IGNORE_INDEX for lab in labels) == 3


def test_a_base_model_that_wants_a_bos_gets_it_first_even_when_the_prompt_is_cut() -> None:
    from tests.unit.test_translation import char_tokenizer  # no chat template; adds <bos> like Gemma's

    tok = char_tokenizer(extra_text="What colour is the sky? blue.")
    example = parse_record({"prompt": "What colour is the sky?", "completion": "blue."}, "x.jsonl, line 1", True)
    assert prompt_text(tok, example.messages) == "<bos>What colour is the sky?\n"
    ids, labels = encode_example(tok, example, 64)
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    short_ids, short_labels = encode_example(tok, example, 12)  # the prompt's start is cut, its BOS is not
    assert len(short_ids) == 12 and short_ids[0] == tok.bos_token_id
    assert tok.decode(short_ids[1:]) == "sky?\nblue.<eos>"  # 1 BOS + the last 5 prompt tokens + 6 answer tokens
    assert sum(lab != IGNORE_INDEX for lab in short_labels) == sum(lab != IGNORE_INDEX for lab in labels) == 6


def test_packing_keeps_every_token_and_respects_the_limit() -> None:
    enc = EncodedGeneration([[1, 2, 3], [4, 5], [6, 7, 8, 9], [10]], [[-100, 2, 3], [-100, 5], [-100, -100, 8, 9], [10]])
    packed = pack(enc, 6)
    assert packed.input_ids == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert packed.labels == [[-100, 2, 3, -100, 5], [-100, -100, 8, 9, 10]]


def test_collator_pads_labels_with_ignore_index() -> None:
    enc = EncodedGeneration([[5, 6, 7], [8]], [[-100, 6, 7], [8]])
    batch = next(iter(make_lm_loader(enc, 0, 2, 0, shuffle=False)))
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]


def test_loss_is_mean_next_token_ce_over_labelled_positions() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[-100, -100, 3, 1]])
    loss = causal_lm_loss(logits, {"labels": labels})
    expected = (F.cross_entropy(logits[0, 1:2], torch.tensor([3])) + F.cross_entropy(logits[0, 2:3], torch.tensor([1]))) / 2
    assert torch.allclose(loss, expected)


def test_text_metrics() -> None:
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("", "") == 1.0 and rouge_l("a", "") == 0.0
    assert exact_match(["Blue.", "green"], ["blue", "white"]) == 0.5
    assert mean_rouge_l(["a b", "c"], ["a b", "d"]) == 0.5
    assert perplexity(2 * math.log(3), 2) == pytest.approx(3.0)


def test_lora_checkpoints_hold_only_adapters(tiny_llama: Path) -> None:
    lm = add_lora(load_causal_lm(tiny_llama), LoraSection(r=4, alpha=8, target_modules=["q_proj", "v_proj"]), "CAUSAL_LM")
    model = LMForTraining(lm, trainable_only=True)
    keys = list(model.state_dict())
    assert keys and all("lora_" in k for k in keys)
    full = LMForTraining(load_causal_lm(tiny_llama)).state_dict()  # tied embeddings: written as separate copies
    assert full["lm.lm_head.weight"].data_ptr() != full["lm.model.embed_tokens.weight"].data_ptr()


def test_tiny_lora_run_learns_and_saves_a_loadable_generator(tiny_llama: Path, tmp_path: Path) -> None:
    from fmkit.config import load_config
    from fmkit.inference import load_predictor
    from fmkit.workflows import train_for_task

    data = write_colour_jsonl(tmp_path / "train.jsonl", 30)
    cfg = load_config(None, {
        "task.type": "generation", "model.name": str(tiny_llama), "data.train": str(data), "output": str(tmp_path / "run"),
        "train.epochs": 4, "train.batch_size": 8, "train.progress": False, "train.early_stopping_patience": 0,
        "strategy.lora.learning_rate": 5e-2, "strategy.lora.r": 8, "generation.eval_generations": 3,
        "generation.max_new_tokens": 3, "data.eval_fraction": 0.2, "train.threads": 1,
    })
    result = train_for_task(cfg)
    m = result.metrics
    run = result.run_dir
    assert m["strategy"] == "lora" and m["generated_examples"] == 3
    assert m["perplexity"] < m["base_perplexity"]  # it learned the answers
    for name in ("config.yaml", "metrics.json", "history.jsonl", "samples.jsonl", "samples.txt", "model/fmkit.json",
                 "model/model.safetensors", "adapters/adapter_model.safetensors"):
        assert (run / name).is_file(), name
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and {"prompt", "reference", "generated", "base_model"} <= set(samples[0])
    assert "q_proj" in (run / "config.yaml").read_text()  # the causal-LM targets were resolved and recorded

    predictor = load_predictor(run)
    [record] = predictor.predict(["what colour is the snow ?"])
    assert set(record) == {"prompt", "generated"}
    streamed = "".join(predictor.stream("what colour is the snow ?", max_new_tokens=3))
    assert streamed.strip() == predictor.generate(["what colour is the snow ?"], max_new_tokens=3)[0]


def test_server_generate_route_whole_and_streamed(tiny_llama: Path) -> None:
    from fastapi.testclient import TestClient

    from fmkit.inference.generation import GenerationPredictor
    from fmkit.inference.server import create_app

    predictor = GenerationPredictor.load(tiny_llama)
    predictor.max_new_tokens = 4
    with TestClient(create_app(predictor, task="generation")) as client:
        whole = client.post("/v1/generate", json={"prompt": "what colour is the sky ?"})
        assert whole.status_code == 200, whole.text
        expected = predictor.generate(["what colour is the sky ?"])[0]
        assert whole.json()["generated"] == expected
        streamed = client.post("/v1/generate", json={"prompt": "what colour is the sky ?", "stream": True})
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/plain")
        assert streamed.text.strip() == expected
        short = client.post("/v1/generate", json={"prompt": "hello", "max_new_tokens": 1})
        assert short.status_code == 200
        assert client.post("/v1/generate", json={"prompt": ""}).status_code == 422


def test_lora_layers_reach_the_causal_lm(tiny_llama: Path) -> None:
    """strategy.lora.layers used to be ignored for generation: every layer got adapters."""
    lm = add_lora(load_causal_lm(tiny_llama), LoraSection(r=4, alpha=8, target_modules=["q_proj", "v_proj"], layers=1),
                  "CAUSAL_LM")
    adapted = sorted({name.split(".layers.")[1].split(".")[0] for name, _ in lm.named_parameters() if "lora_" in name})
    total = lm.config.num_hidden_layers
    assert total > 1 and adapted == [str(total - 1)]
    every = add_lora(load_causal_lm(tiny_llama), LoraSection(r=4, alpha=8, target_modules=["all-linear"], layers=1),
                     "CAUSAL_LM")
    assert {name.split(".layers.")[1].split(".")[0] for name, _ in every.named_parameters() if "lora_" in name} == \
        {str(total - 1)}
