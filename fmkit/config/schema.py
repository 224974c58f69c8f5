"""The typed run configuration: one section per layer, every field documented once.

Layer 0: imports nothing from torch or the rest of fmkit. Each lower layer receives
its own section (``cfg.train``, ``cfg.data``...), never the whole config or a dict.
Unknown keys are rejected at load time (see ``fmkit.config.load``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fmkit.config.image_generation import GenerationConfig, ImageConfig
from fmkit.config.pretrain import PretrainConfig
from fmkit.config.tasks import task_spec
from fmkit.config.translation import TranslationConfig
from fmkit.errors import RenamedKeyWarning

DEFAULT_MODEL = "all-MiniLM-L6-v2"


LARGE_VOCABULARY = 100_000  # tokens; see TrainConfig.freeze_word_embeddings


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    train: Path | None = Field(None, description="Labelled training file (CSV, TSV, JSONL or Parquet).")
    eval: Path | None = Field(
        None, description="Labelled evaluation file. Without it, a stratified split of `train` is held out."
    )
    text_column: str | None = Field(
        None, description="Column holding the text. Auto-detected (text, sentence, content, review...) if unset. "
        "Two columns, 'A,B', make each example a text pair (regression; auto-detected: sentence1,sentence2...)."
    )
    label_column: str | None = Field(
        None, description="Column holding the label. Auto-detected (label, category, target, class...) if unset. "
        "multilabel: one column of labels, or 'a,b,c' = one 0/1 column per label."
    )
    label_separator: str | None = Field(
        None, min_length=1, description="multilabel: what separates the labels in one cell ('billing|refund'). "
        "Unset: found among | ; , (a JSON list per row needs none)."
    )
    eval_fraction: float = Field(
        0.1, gt=0.0, lt=0.9, description="Share of `train` held out for evaluation when no `eval` file is given."
    )
    max_length: int = Field(
        128, ge=8, le=8192, description="Maximum tokens per text; what happens to longer ones is `long_text` "
        "(doctor reports how many there are and recommends a policy)."
    )
    long_text: Literal["truncate", "head_tail", "chunk"] = Field(
        "truncate", description="Texts longer than max_length (classification): 'truncate' keeps the first tokens; "
        "'head_tail' the first ~1/4 and last ~3/4 of them (Sun et al. 2019); 'chunk' splits each text into "
        "overlapping windows of max_length tokens, trains on every window with its text's label (each text weighing "
        "the same in the loss) and aggregates the windows' probabilities per text at eval, predict, serve and "
        "export time. Saved with the model, so predict/serve/export apply it without flags."
    )
    chunk_stride: int = Field(
        32, ge=0, description="long_text=chunk: tokens shared by neighbouring windows (must be below max_length)."
    )
    chunk_aggregate: Literal["mean", "max", "vote"] = Field(
        "mean", description="long_text=chunk: a text's probabilities from its windows': their mean, each class's "
        "max (renormalised), or the share of windows voting for it."
    )

    @model_validator(mode="after")
    def _stride_below_window(self) -> DataConfig:
        if self.long_text == "chunk" and self.chunk_stride >= self.max_length:
            raise ValueError(f"data.chunk_stride={self.chunk_stride} must be smaller than data.max_length="
                             f"{self.max_length} (windows would not advance); lower data.chunk_stride")
        return self


class ModelConfig(Section):
    name: str = Field(
        DEFAULT_MODEL,
        description="Backbone: 'all-MiniLM-L6-v2' (bundled, English), 'multilingual-e5-small' (bundled with fmkit[multilingual], "
        "100+ languages), a local Hugging Face folder, or a hub id when online.",
    )
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="How token vectors become one text vector for the head: mean of tokens or the [CLS] token."
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the classification head.")
    trust_remote_code: bool = Field(
        False, description="Allow a hub model to run its own Python code. Off: only enable for code you trust."
    )


class TaskConfig(Section):
    type: str = Field(
        "classification", description="What the model learns to do: classify texts (classification), predict a "
        "number per text or text pair (regression), generate text, classify images, tag named entities (ner: CoNLL "
        "or JSONL spans), or embed texts for search (embedding: query/positive pairs). Any task in the registry "
        "(fmkit/config/tasks.py)."
    )

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        task_spec(value)  # raises, naming the tasks there are
        return value
    class_weights: Literal["none", "auto"] = Field(
        "none", description="'auto' weights the loss by inverse class frequency, for imbalanced data."
    )
    pair_encoding: Literal["auto", "cross", "bi"] = Field(
        "auto", description="Text-pair regression: 'cross' reads both texts as one sequence (a cross-encoder); "
        "'bi' embeds each text alone and predicts from their cosine (a bi-encoder, trained as sentence-"
        "transformers' CosineSimilarityLoss; its vectors can be cached and searched). 'auto': 'bi' when the "
        "backbone is a sentence-embedding model (it ships sentence_bert_config.json: it was trained for cosine), "
        "else 'cross'. On STS-B with all-MiniLM-L6-v2, bi beat cross by several points (BENCHMARKS.md)."
    )


# LoRA's default targets on BERT-family encoders (generation picks its own for causal LMs).
ENCODER_LORA_TARGETS = ("value", "intermediate.dense")


class ProbeSection(Section):
    """The logistic-regression head on frozen vectors: the `linear-probe` strategy, fewshot's head phase, and
    the quick probe that starts `full`/`lora` heads."""

    init: bool = Field(
        True, description="full/lora: start the head from a quick linear probe (needed for many classes) not at random."
    )
    epochs: int = Field(30, ge=1, description="init: epochs of the starting head over cached embeddings.")
    learning_rate: float = Field(3e-3, gt=0, description="init: Adam learning rate of the starting head.")
    weight_decay: float = Field(1e-4, ge=0, description="init: AdamW weight decay of the starting head.")
    c: float = Field(
        1.0, gt=0, description="linear-probe/fewshot: inverse L2 strength of the logistic-regression head "
        "(scikit-learn's C), which L-BFGS fits to convergence. Regression's ridge head chooses its own penalty by exact "
        "leave-one-out error and does not use it.",
    )


class LoraSection(Section):
    """Low-rank adapters (peft), one implementation for every task that allows `lora`."""

    r: int = Field(8, ge=1, description="Adapter rank.")
    alpha: int = Field(16, ge=1, description="Scaling numerator (adapter output is scaled by alpha / r).")
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout on the adapter input (PEFT's default, 0: on CPU the masks on "
        "every adapted layer's input cost a fifth or more of a LoRA step; the backbone's own dropout still applies).",
    )
    target_modules: list[str] = Field(
        default_factory=lambda: list(ENCODER_LORA_TARGETS),
        description="Names (or name endings) of the linear layers that get adapters; ['all-linear'] adapts "
        "every linear layer. Default on encoders: attention values and the feed-forward up-projection, which matched "
        "`full` on SST-2 (89.0% vs 88.9%) where the usual ['query', 'value'] stayed 2 points below (BENCHMARKS.md); "
        "generation, when this is left unset, adapts a causal LM's attention projections (q, k, v, o).",
    )
    layers: int | None = Field(
        None, ge=1, description="Adapt only the top N transformer layers (unset: every layer). The layers "
        "below the lowest adapted one have nothing to train, so the backward pass stops there.",
    )
    learning_rate: float = Field(
        1e-3, gt=0, description="Peak learning rate of the adapters (adapters need a higher rate than full weights); "
        "it replaces train.learning_rate for every task's lora run."
    )


class FewshotSection(Section):
    """SetFit's recipe: contrastive pairs fine-tune the body, then the probe head is fitted."""

    pairs_per_example: int | None = Field(
        None, ge=1, description="Contrastive pairs drawn per labelled example and epoch (half positive, half "
        "negative). Unset: as many as SetFit's default sampling draws, (classes - 1) x examples per class, kept "
        "between 8 and 24 (SetFit's count grows with the square of the data).",
    )
    epochs: float = Field(1, gt=0, description="Epochs of contrastive fine-tuning over the pairs.")
    learning_rate: float = Field(2e-5, gt=0, description="Learning rate of the body during the pair phase.")
    batch_size: int = Field(16, ge=2, description="Pairs per optimizer step in the pair phase.")


class ZeroshotSection(Section):
    """No training: texts are scored against their labels' names or descriptions."""

    label_descriptions: Path | None = Field(
        None, description="File mapping each label to a description (JSON object, or CSV/TSV label,description)."
    )
    temperature: float = Field(
        30.0, gt=0, description="Logits are this times the cosine between text and label embeddings."
    )


# Flat keys of earlier releases -> their nested place. Configs written by older runs (and users' files)
# keep loading; each use prints one FutureWarning naming the new key.
LEGACY_STRATEGY_KEYS: dict[str, tuple[str, str]] = {
    "probe_init": ("probe", "init"), "probe_epochs": ("probe", "epochs"),
    "probe_learning_rate": ("probe", "learning_rate"), "probe_weight_decay": ("probe", "weight_decay"),
    "head_c": ("probe", "c"),
    **{f"lora_{key}": ("lora", key) for key in ("r", "alpha", "dropout", "target_modules", "layers", "learning_rate")},
    **{f"fewshot_{key}": ("fewshot", key) for key in ("pairs_per_example", "epochs", "learning_rate", "batch_size")},
    "label_descriptions": ("zeroshot", "label_descriptions"), "zeroshot_temperature": ("zeroshot", "temperature"),
}


class StrategyConfig(Section):
    name: Literal["auto", "full", "lora", "linear-probe", "fewshot", "zeroshot"] = Field(
        "auto",
        description="How the backbone is adapted: 'full' fine-tunes every weight; 'lora' trains low-rank adapters "
        "(generation: the default when unset); 'linear-probe' freezes the backbone and trains the head only; "
        "'fewshot' is the SetFit recipe (contrastive pairs, then the head); 'zeroshot' trains nothing and scores "
        "texts against label names or descriptions; 'auto' (classification default) picks from the examples per "
        "class and `time_budget`, measured on this machine, and writes RUN_DIR/strategy.json.",
    )
    time_budget: str | None = Field(
        None, pattern=r"^\s*([nN][oO][nN][eE]|\d+(\.\d+)?\s*[smh]?)\s*$",
        description="Wall-time budget of the whole train command, e.g. '90s', '10m', '1h' (plain number: seconds), "
        "from its start to the saved model and report; 'none': no limit. Unset: 10m for a classifier whose "
        "strategy is 'auto' (it then plans what fits: the probe, or `full` for the epochs that fit, never worse "
        "than the probe), no limit for a strategy named explicitly. With any strategy the training loop "
        "re-measures its step, evaluation and checkpoint times as it goes and stops (keeping the best evaluated "
        "weights) when one more step would not leave time to finish. strategy.json and metrics.json say what "
        "was cut.",
    )
    probe: ProbeSection = Field(
        default_factory=ProbeSection, description="The logistic-regression head on frozen vectors: linear-probe, "
        "fewshot's head phase, and the quick probe that starts full/lora heads.",
    )
    lora: LoraSection = Field(
        default_factory=LoraSection, description="lora: low-rank adapters (peft), the same for every task."
    )
    fewshot: FewshotSection = Field(
        default_factory=FewshotSection, description="fewshot: the SetFit pair phase that tunes the body first."
    )
    zeroshot: ZeroshotSection = Field(
        default_factory=ZeroshotSection, description="zeroshot: texts scored against label names or descriptions."
    )

    @model_validator(mode="before")
    @classmethod
    def _nest_legacy_keys(cls, value: object) -> object:
        if not isinstance(value, dict) or not any(key in LEGACY_STRATEGY_KEYS for key in value):
            return value
        import warnings

        nested = dict(value)
        for old, (section, key) in LEGACY_STRATEGY_KEYS.items():
            if old not in nested:
                continue
            target = nested.get(section)
            target = dict(target) if isinstance(target, dict) else {}
            target.setdefault(key, nested.pop(old))  # the nested key wins where both are given
            nested[section] = target
            warnings.warn(f"strategy.{old} is now strategy.{section}.{key}; the old name still works for now.",
                          RenamedKeyWarning, stacklevel=2)
        return nested


class TrainConfig(Section):
    epochs: float = Field(3, gt=0, description="Passes over the training data (fractions allowed).")
    batch_size: int = Field(32, ge=1, description="Examples per optimizer step and process (before accumulation).")
    grad_accum_steps: int = Field(1, ge=1, description="Batches whose gradients are summed before each step.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate of the backbone (AdamW).")
    head_learning_rate: float | None = Field(
        None, gt=0, description="Learning rate of the new head; defaults to 10x `learning_rate`."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not applied to biases and norms).")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps with linear warmup before linear decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm; 0 turns clipping off.")
    seed: int = Field(42, description="Seed for splits, shuffling, dropout and head initialisation.")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast precision. 'auto': bf16 where the hardware runs it natively "
        "(GPUs, CPUs with AMX/AVX512-BF16), else fp32.",
    )

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _no_is_not_false(cls, value: object) -> object:
        # YAML 1.1 reads a bare `no` (in a config file or --set train.mixed_precision=no) as False.
        return "no" if value is False else value
    eval_every_steps: int = Field(0, ge=0, description="Evaluate every N optimizer steps; 0 means once per epoch.")
    early_stopping_patience: int = Field(
        2, ge=0, description="Stop after this many evaluations without improvement; 0 never stops early."
    )
    checkpoint_every_steps: int = Field(
        200, ge=0, description="Write a resumable checkpoint every N optimizer steps (and at each eval); 0: at evals only."
    )
    group_by_length: bool = Field(
        True, description="Batch texts of similar length together to cut padding (order is still shuffled)."
    )
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 uses every core of this machine.")
    fast_cpu_dropout: bool = Field(
        True, description="On CPU, draw dropout masks four to a random word (same distribution, ~15% faster steps) "
        "and run attention on the math path while it trains (SDPA's CPU backward is about twice as slow)."
    )
    frozen_weights_bf16: bool = Field(
        True, description="bf16 training: keep a bf16 copy of frozen linear weights (LoRA's base model) for the run "
        "instead of casting them at every step (same results; costs 2 bytes per frozen weight).",
    )
    freeze_word_embeddings: bool | None = Field(
        None, description="Keep the word-embedding matrix fixed while the rest trains. Unset: frozen when the "
        f"vocabulary has at least {LARGE_VOCABULARY:,} entries (multilingual models such as multilingual-e5-small, "
        "whose 250k-row matrix is 82% of its weights: its dense gradient and AdamW state cost more than a "
        "third of every step and 1.1 GB, for rows the data mostly never uses), trained otherwise.",
    )
    progress: bool = Field(True, description="Show a progress bar with ETA, loss and examples/s.")


class EvalConfig(Section):
    batch_size: int = Field(64, ge=1, description="Texts per forward pass when evaluating and predicting.")
    primary_metric: str | None = Field(
        None, description="Metric that picks the best checkpoint and drives early stopping (smaller is better for "
        "rmse and mae). Unset: the task's own (classification macro_f1, regression spearman, ner f1, embedding mrr).",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Precision of a text classifier's evaluation and prediction passes. 'auto': bf16 where "
        "the hardware runs it natively (CPUs with AMX/AVX512-BF16, GPUs with bf16; ~2x faster), else fp32. "
        "Saved with the model: `fmkit predict`, `eval` and `serve` use it unless given --precision."
    )
    target_precision: float | None = Field(
        None, gt=0, le=1, description="Classification: after training, tune an abstain threshold on the eval split "
        "(the lowest top probability whose answered eval examples reach this precision) and save it with the model; "
        "below it `predict` answers label null, abstained true (top_label holds the would-be label). Unset: the "
        "model always answers.",
    )


class TrackConfig(Section):
    registry: bool = Field(True, description="Record the run in the SQLite run registry (RUNS_ROOT/registry.db).")
    runs_root: Path | None = Field(
        None, description="Folder holding registry.db (what `fmkit runs` and `fmkit ui` read); default: the run's parent."
    )
    tensorboard: bool = Field(True, description="Write TensorBoard event files to RUN_DIR/tensorboard.")
    backend: Literal["none", "mlflow"] = Field("none", description="Also log to this tracking backend ('mlflow').")
    tracking_uri: str | None = Field(
        None, description="Backend tracking URI; for MLflow the default is sqlite:///RUNS_ROOT/mlflow.db (local)."
    )
    experiment: str = Field("fmkit", description="Experiment name used by the tracking backend.")


class ServeConfig(Section):
    """`fmkit serve`: dynamic batching and request limits (the API key comes from --api-key / FMKIT_API_KEY only)."""

    host: str = Field("127.0.0.1", description="Interface to listen on; 0.0.0.0 exposes the server to the network.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, description="Server processes, each with its own model copy and a share of the cores.")
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="Inference backend; 'auto' times those the model folder offers and keeps the fastest."
    )
    precision: Literal["model", "auto", "fp32", "bf16"] = Field(
        "model", description="Precision of the torch backend: 'model' = what the model was evaluated in (its "
        "fmkit.json), else as `eval.precision`. ONNX graphs run as exported."
    )
    batching: bool = Field(True, description="Coalesce requests that arrive together into one forward pass.")
    max_batch_size: int = Field(64, ge=1, description="Most texts in one coalesced forward pass.")
    max_wait_ms: float = Field(
        2.0, ge=0, description="How long the first request of a batch waits for others to join (while idle)."
    )
    max_queue: int = Field(512, ge=1, description="Requests waiting at most; beyond it the server answers 503 + Retry-After.")
    max_texts_per_request: int = Field(256, ge=1, description="Texts in one request at most (413 beyond).")
    max_chars_per_text: int = Field(10000, ge=1, description="Characters per text at most (see `overlong_text`).")
    overlong_text: Literal["truncate", "reject"] = Field(
        "truncate", description="A text over `max_chars_per_text`: cut it ('truncate') or answer 413 ('reject')."
    )
    max_request_bytes: int = Field(4_000_000, ge=1024, description="Largest request body accepted (413 beyond).")
    request_timeout_s: float = Field(30.0, gt=0, description="A request not answered in this time gets 504.")


class RunConfig(Section):
    """Everything one `fmkit train` run needs; written resolved into RUN_DIR/config.yaml."""

    output: Path | None = Field(None, description="Run directory. Defaults to runs/<timestamp>.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    translation: TranslationConfig = Field(default_factory=TranslationConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    track: TrackConfig = Field(default_factory=TrackConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @model_validator(mode="after")
    def _task_metric(self) -> RunConfig:
        # Resolved here, once: config.yaml then records the metric the run really selected by.
        spec = task_spec(self.task.type)
        if self.eval.primary_metric is None:
            self.eval.primary_metric = spec.primary_metric
        else:
            spec.check_metric(self.eval.primary_metric)
        if self.data.long_text != "truncate" and spec.name != "classification":
            raise ValueError(f"data.long_text={self.data.long_text} is implemented for --task classification; "
                             f"{spec.name} truncates at data.max_length (set data.long_text=truncate)")
        return self

    @property
    def primary_metric(self) -> str:
        """eval.primary_metric, resolved to the task's own when unset."""
        return self.eval.primary_metric or task_spec(self.task.type).primary_metric

    @property
    def higher_is_better(self) -> bool:
        return task_spec(self.task.type).higher_is_better(self.primary_metric)
