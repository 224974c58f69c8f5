"""The one registry of tasks: what each task is called, and where its parts live.

Every command that depends on the task (train, eval, predict, serve, the report, the dashboard) asks this
registry, never a task name. An entry names its parts as "module:attribute" strings, imported only when used,
so this module (layer 0) imports nothing and a task's code may sit in any layer:

    register_task(TaskSpec(
        name="regression", summary="a number per text (or text pair)",
        workflow="fmkit.workflows.regression:train", predictor="fmkit.inference.regression:RegressionPredictor",
        routes="fmkit.inference.server:prediction_routes", evaluate="fmkit.workflows.regression:evaluate_saved",
        strategies=("full", "lora", "linear-probe"), primary_metric="spearman",
        metrics=("spearman", "pearson", "rmse", "mae", "r2"), lower_is_better=("rmse", "mae"),
    ))

Adding a task is one package of code plus one such registration.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

from fmkit.errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    """A task's parts. `routes` None: `fmkit serve` refuses the model (and says so); `evaluate` None: so does
    `fmkit eval`."""

    name: str
    summary: str  # what the model learns, for --help and error messages
    workflow: str  # "module:function": train(cfg, *, resume_dir=None, overwrite=False) -> RunResult
    # "module:Class" with load(path, batch_size, ...) and predict(texts) -> list[dict]; None: the model is a
    # backbone for other tasks (pretrain), not something that predicts.
    predictor: str | None
    strategies: tuple[str, ...]  # what --strategy accepts besides auto (the first one is auto's fallback)
    primary_metric: str  # picks the best checkpoint and drives early stopping unless eval.primary_metric says
    metrics: tuple[str, ...]  # what eval.primary_metric may name for this task
    lower_is_better: tuple[str, ...] = ()
    routes: str | None = None  # "module:function": routes(ServeContext) -> fastapi.APIRouter
    evaluate: str | None = None  # "module:function": evaluate_saved(model_dir, data, columns...) -> metrics
    report: str | None = None  # module with the task's report sections (evaluation/report.py asks it)
    result_printer: str | None = None  # "module:function": what `fmkit train` prints at the end of a run
    eval_printer: str | None = None  # "module:function"(metrics): `fmkit eval`'s output; None: the scalar metrics
    doctor: str | None = None  # "module:function"(cfg): the data facts `fmkit doctor` prints (None: not checked)
    # The model is a text body + linear head (models/classifier.py TextClassifier): it loads with it and its
    # predictor takes --precision.
    head_model: bool = False

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better

    def check_metric(self, metric: str) -> None:
        if metric not in self.metrics:
            raise ConfigError(f"eval.primary_metric='{metric}' is not a metric of --task {self.name}; "
                              f"choose one of {', '.join(self.metrics)}.")

    def check_strategy(self, strategy: str) -> None:
        if strategy != "auto" and strategy not in self.strategies:
            raise ConfigError(f"--task {self.name} trains with --strategy {' or '.join(self.strategies)}, "
                              f"not '{strategy}'.")


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec


def task_spec(name: str) -> TaskSpec:
    spec = TASKS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown task '{name}'.{hint} Tasks: {', '.join(TASKS)}.")
    return spec


def resolve(target: str) -> Any:
    """The object a "module:attribute" string names."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


CLASSIFICATION_METRICS = ("macro_f1", "accuracy")

register_task(TaskSpec(
    name="classification", summary="one label per text (or text pair)",
    workflow="fmkit.workflows.classification:train", predictor="fmkit.inference.predictor:Predictor",
    strategies=("full", "lora", "linear-probe", "fewshot", "zeroshot"), primary_metric="macro_f1",
    metrics=CLASSIFICATION_METRICS, routes="fmkit.inference.server:classification_routes",
    evaluate="fmkit.workflows.classification:evaluate_saved", result_printer="fmkit.cli.train_eval_predict:print_result",
    eval_printer="fmkit.cli.train_eval_predict:print_classification_eval", head_model=True,
    doctor="fmkit.workflows.classification:doctor_data",
))
register_task(TaskSpec(
    name="regression", summary="a number per text or text pair (a score, a rating, a similarity)",
    workflow="fmkit.workflows.regression:train", predictor="fmkit.inference.regression:RegressionPredictor",
    strategies=("full", "lora", "linear-probe"), primary_metric="spearman",
    metrics=("spearman", "pearson", "rmse", "mae", "r2"), lower_is_better=("rmse", "mae"),
    routes="fmkit.inference.server:prediction_routes", evaluate="fmkit.workflows.regression:evaluate_saved",
    report="fmkit.evaluation.report_regression", result_printer="fmkit.workflows.regression:print_result",
    head_model=True, doctor="fmkit.workflows.regression:doctor_data",
))
register_task(TaskSpec(
    name="multilabel", summary="any number of labels per text (a|b, a JSON list, or one 0/1 column per label)",
    workflow="fmkit.workflows.multilabel:train", predictor="fmkit.inference.multilabel:MultiLabelPredictor",
    # Not fewshot: its contrastive pairs are "same class / different class", which several labels per text lack.
    strategies=("full", "lora", "linear-probe"), primary_metric="macro_f1",
    metrics=("macro_f1", "micro_f1", "samples_f1", "subset_accuracy", "hamming_loss"),
    lower_is_better=("hamming_loss",), routes="fmkit.inference.server:prediction_routes",
    evaluate="fmkit.workflows.multilabel:evaluate_saved", report="fmkit.evaluation.report_multilabel",
    result_printer="fmkit.workflows.multilabel:print_result", head_model=True,
    doctor="fmkit.workflows.multilabel:doctor_data",
))
register_task(TaskSpec(
    name="ner", summary="entity tags per word (CoNLL or JSONL spans)",
    workflow="fmkit.workflows.ner:train", predictor="fmkit.inference.ner:NerPredictor",
    strategies=("full", "lora"), primary_metric="f1", metrics=("f1", "precision", "recall", "token_accuracy"),
    routes="fmkit.inference.server:prediction_routes", report="fmkit.evaluation.report_tasks",
    evaluate="fmkit.workflows.ner:evaluate_saved", eval_printer="fmkit.workflows.ner:print_eval",
    result_printer="fmkit.cli.embeddings:print_task_result",
))
register_task(TaskSpec(
    name="embedding", summary="vectors for search (query/positive pairs)",
    workflow="fmkit.workflows.embedding:train", predictor="fmkit.inference.embedder:Embedder",
    strategies=("full", "lora"), primary_metric="mrr", metrics=("mrr", "recall@1", "recall@10", "ndcg@10"),
    routes="fmkit.inference.server:prediction_routes", report="fmkit.evaluation.report_tasks",
    evaluate="fmkit.workflows.embedding:evaluate_saved",
    result_printer="fmkit.cli.embeddings:print_task_result",
))
register_task(TaskSpec(
    name="image", summary="one label per image (folders of images)",
    workflow="fmkit.workflows.image:train", predictor="fmkit.inference.image:ImagePredictor",
    strategies=("full", "linear-probe"), primary_metric="macro_f1", metrics=CLASSIFICATION_METRICS,
    routes="fmkit.inference.image_server:routes", evaluate="fmkit.workflows.image:evaluate_saved",
    result_printer="fmkit.cli.train_eval_predict:print_result",
    eval_printer="fmkit.cli.train_eval_predict:print_classification_eval",
))
register_task(TaskSpec(
    name="generation", summary="text from a prompt (causal LM)",
    workflow="fmkit.workflows.generation:train", predictor="fmkit.inference.generation:GenerationPredictor",
    strategies=("lora", "full"), primary_metric="mean_log_likelihood", metrics=("mean_log_likelihood",),
    routes="fmkit.inference.generation_server:routes", result_printer="fmkit.cli.media:print_generation_result",
))
register_task(TaskSpec(
    name="pretrain", summary="continued masked-LM pretraining on unlabelled text (a domain backbone for --model)",
    workflow="fmkit.workflows.pretrain:train", predictor=None, strategies=("full",), primary_metric="loss",
    metrics=("loss", "perplexity"), lower_is_better=("loss", "perplexity"),
    result_printer="fmkit.cli.pretrain:print_result",
))
register_task(TaskSpec(
    name="translation", summary="a sentence in another language (causal LM + prompt; source/target or zh/en columns)",
    workflow="fmkit.workflows.translation:train", predictor="fmkit.inference.translation:TranslationPredictor",
    strategies=("lora", "full"), primary_metric="mean_log_likelihood", metrics=("mean_log_likelihood",),
    routes="fmkit.inference.translation_server:routes", evaluate="fmkit.workflows.translation:evaluate_saved",
    report="fmkit.evaluation.report_translation", result_printer="fmkit.workflows.translation:print_result",
    eval_printer="fmkit.workflows.translation:print_eval",
))
