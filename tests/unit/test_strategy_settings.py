"""Every strategy setting reaches every task that allows the strategy.

strategy.lora.learning_rate used to be silently ignored by NER and embedding runs (their loops trained at
train.learning_rate); this test records the learning rate each LoRA loop's optimizer is built with, and which
layers got adapters, for every text task that allows LoRA.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fmkit
from fmkit.config.tasks import TASKS
from fmkit.training import loop as loop_module
from tests.conftest import write_sentiment_csv
from tests.unit import test_generation, test_translation
from tests.unit.test_embedding_training import write_pairs
from tests.unit.test_multilabel import write_tagged
from tests.unit.test_ner_training import write_conll
from tests.unit.test_regression import write_scores

DATA: dict[str, Callable[[Path], Path]] = {
    "classification": lambda d: write_sentiment_csv(d / "train.csv", n=40),
    "regression": lambda d: write_scores(d / "train.jsonl", 40, 0),
    "multilabel": lambda d: write_tagged(d / "train.jsonl", 40, 0),
    "ner": lambda d: write_conll(d / "train.conll", 40, 0),
    "embedding": lambda d: write_pairs(d / "train.jsonl", 40, 0),
}
tiny_llama = test_generation.tiny_llama  # the fixture: a tiny random causal LM
tiny_gemma = test_translation.tiny_gemma  # the fixture: a tiny random Gemma 3 with a character tokenizer
LORA_TASKS = sorted(name for name, spec in TASKS.items() if "lora" in spec.strategies and name in DATA)


@pytest.fixture
def rates(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The learning rate of every optimizer the loop builds, in order."""
    seen: list[float] = []
    real_build = loop_module.build_optimizer

    def spy(model: Any, cfg: Any) -> Any:
        seen.append(cfg.learning_rate)
        return real_build(model, cfg)

    monkeypatch.setattr(loop_module, "build_optimizer", spy)
    return seen


def test_every_text_task_with_lora_is_covered() -> None:
    # A new task that allows LoRA must be added to DATA, or this test would silently skip it.
    text_tasks_with_lora = {n for n, s in TASKS.items() if "lora" in s.strategies and n not in ("generation", "translation")}
    assert text_tasks_with_lora == set(LORA_TASKS)


@pytest.mark.parametrize("task", LORA_TASKS)
def test_lora_settings_reach_the_task(task: str, tiny_model: Path, tmp_path: Path, rates: list[float]) -> None:
    run = tmp_path / "run"
    fmkit.train(data=str(DATA[task](tmp_path)), model=str(tiny_model), epochs=1, output=str(run),
                **{"task.type": task, "strategy.name": "lora", "strategy.lora.learning_rate": 0.0123,
                   "strategy.lora.layers": 1, "strategy.lora.r": 3, "strategy.lora.alpha": 5,
                   "strategy.lora.target_modules": ["query", "value"], "strategy.probe.init": False, "train.learning_rate": 1e-4,
                   "train.progress": False, "train.batch_size": 8})
    assert rates and rates[-1] == 0.0123, rates  # the LoRA loop, not train.learning_rate
    adapter_config = json.loads((run / "adapters" / "adapter_config.json").read_text())
    assert adapter_config["layers_to_transform"] == [1], adapter_config  # the tiny model's top layer of 2
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (3, 5), adapter_config
    assert sorted(adapter_config["target_modules"]) == ["query", "value"], adapter_config


def test_generation_takes_the_same_lora_section(tiny_llama: Path, tmp_path: Path, rates: list[float]) -> None:
    """Generation wraps the causal LM with the same add_lora as the encoders, from the same strategy.lora."""
    run = tmp_path / "run"
    fmkit.train(data=str(test_generation.write_colour_jsonl(tmp_path / "train.jsonl", 16)), model=str(tiny_llama), epochs=1,
                output=str(run), **{"task.type": "generation", "strategy.name": "lora", "strategy.lora.r": 3,
                                    "strategy.lora.alpha": 5, "strategy.lora.layers": 1,
                                    "strategy.lora.learning_rate": 0.0123, "train.progress": False,
                                    "train.batch_size": 8, "generation.eval_generations": 0})
    assert rates and rates[-1] == 0.0123, rates
    adapter_config = json.loads((run / "adapters" / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"], adapter_config["layers_to_transform"]) == (3, 5, [1])


def test_translation_takes_the_same_lora_section(tiny_gemma: Path, tmp_path: Path, rates: list[float]) -> None:
    """Translation wraps its causal LM with the same add_lora, from the same strategy.lora (rate, rank, layers)."""
    run = tmp_path / "run"
    data = test_translation.write_jsonl(tmp_path / "train.jsonl", [{"zh": z, "en": e} for z, e in test_translation.PAIRS])
    fmkit.train(data=str(data), model=str(tiny_gemma), epochs=1, output=str(run),
                **{"task.type": "translation", "strategy.name": "lora", "strategy.lora.r": 3, "strategy.lora.alpha": 5,
                   "strategy.lora.layers": 1, "strategy.lora.learning_rate": 0.0123, "train.progress": False,
                   "train.batch_size": 4, "train.mixed_precision": "no", "translation.max_new_tokens": 4,
                   "translation.base_few_shot": 1, "data.eval_fraction": 0.34})
    assert rates and rates[-1] == 0.0123, rates
    adapter_config = json.loads((run / "adapters" / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"], adapter_config["layers_to_transform"]) == (3, 5, [1])


def test_flat_strategy_keys_of_earlier_releases_still_load() -> None:
    from fmkit.config.load import load_config

    with pytest.warns(FutureWarning, match=r"strategy\.lora_r is now strategy\.lora\.r"):
        cfg = load_config(overrides={"strategy.lora_r": 4, "strategy.probe_init": False, "strategy.head_c": 2.0,
                                     "strategy.fewshot_epochs": 3, "strategy.zeroshot_temperature": 7.0})
    assert (cfg.strategy.lora.r, cfg.strategy.probe.init, cfg.strategy.probe.c) == (4, False, 2.0)
    assert (cfg.strategy.fewshot.epochs, cfg.strategy.zeroshot.temperature) == (3, 7.0)
    with pytest.warns(FutureWarning):  # the nested key wins where a file gives both
        both = load_config(overrides={"strategy.lora_r": 4, "strategy.lora.r": 6})
    assert both.strategy.lora.r == 6


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_probe_c_reaches_every_task_with_a_logistic_head(task: str, tiny_model: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """strategy.probe.c is the L2 strength of every logistic-regression head (regression's ridge picks its own)."""
    from fmkit.workflows import objectives

    seen: list[float] = []
    for name in ("SingleLabel", "MultiLabel"):
        cls = getattr(objectives, name)
        real = cls.fit_linear

        def spy(self: Any, vectors: Any, y: Any, c: float, on_iteration: Any, real: Any = real) -> Any:
            seen.append(c)
            return real(self, vectors, y, c, on_iteration)

        monkeypatch.setattr(cls, "fit_linear", spy)
    fmkit.train(data=str(DATA[task](tmp_path)), model=str(tiny_model), output=str(tmp_path / "run"),
                **{"task.type": task, "strategy.name": "linear-probe", "strategy.probe.c": 0.37,
                   "train.progress": False})
    assert seen == [0.37]


def test_fewshot_settings_reach_the_pair_phase(tiny_model: Path, tmp_path: Path, rates: list[float]) -> None:
    run = tmp_path / "run"
    fmkit.train(data=str(DATA["classification"](tmp_path)), model=str(tiny_model), output=str(run),
                **{"strategy.name": "fewshot", "strategy.fewshot.learning_rate": 0.0077,
                   "strategy.fewshot.pairs_per_example": 4, "strategy.fewshot.batch_size": 10,
                   "strategy.fewshot.epochs": 2, "train.progress": False})
    details = json.loads((run / "metrics.json").read_text())["strategy_details"]
    assert rates[0] == 0.0077
    # 36 training rows (a tenth of 40 held out) x 4 pairs = 144 pairs; 15 steps of 10 per epoch, 2 epochs.
    assert (details["pairs"], details["pair_steps"]) == (36 * 4, 2 * 15)
