"""LoRA adapters (peft), one implementation for every task that allows `--strategy lora`.

Encoders (classification, regression, multi-label, NER, embeddings) wrap their encoder with it through
`LoraStrategy`; generation wraps the causal LM itself. Both read the same `strategy.lora` section, and
both save the adapters alone next to the model and merge them in, so a saved model needs no peft.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fmkit.config.schema import LoraSection
from fmkit.errors import ConfigError

ADAPTERS_DIR = "adapters"


def add_lora(module: nn.Module, settings: LoraSection, task_type: str | None = None) -> Any:
    """`module` wrapped with adapters on `settings.target_modules` of its top `settings.layers` layers;
    only the adapters train. `task_type` is peft's ("CAUSAL_LM" for generation, None for an encoder)."""
    from peft import LoraConfig, get_peft_model

    # lm_head is an output projection, not a layer: never adapted, never offered as a target.
    names = sorted({n.rsplit(".", 1)[-1] for n, m in module.named_modules()
                    if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] != "lm_head"})
    layers = adapted_layers(module, settings.layers)
    targets: list[str] | str = settings.target_modules
    if targets == ["all-linear"]:
        # peft takes a layer subset only with module names: every Linear inside the chosen layers.
        targets = names if layers is not None else "all-linear"
    try:
        config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                            target_modules=targets, bias="none", task_type=task_type, layers_to_transform=layers)
        wrapped = get_peft_model(module, config)
    except ValueError as exc:
        raise ConfigError(
            f"strategy.lora.target_modules={settings.target_modules}: {exc}. Linear layers of this model: "
            f"{', '.join(names)} (or ['all-linear'])."
        ) from None
    for sub in wrapped.modules():
        # peft casts a bf16 input up to the adapter's fp32 before autocast casts it back down: two copies of
        # every adapted activation for the same values. The base weights are fp32, so outside autocast inputs
        # already match and there is nothing to cast.
        if hasattr(sub, "cast_input_dtype_enabled"):
            sub.cast_input_dtype_enabled = False  # type: ignore[assignment]
    return wrapped


def merge_lora(module: Any, adapters_dir: Path | None = None) -> Any:
    """A LoRA-wrapped module -> the plain module with the adapters folded in (adapters saved alone first, if
    a folder is given). Anything without adapters comes back unchanged."""
    if not hasattr(module, "merge_and_unload"):
        return module
    if adapters_dir is not None:
        module.save_pretrained(str(adapters_dir))
    return module.merge_and_unload()


def adapted_layers(module: nn.Module, top_layers: int | None) -> list[int] | None:
    """Indices of the top `top_layers` transformer layers (None: all of them, peft's default)."""
    if top_layers is None:
        return None
    total = getattr(getattr(module, "config", None), "num_hidden_layers", None)
    if not isinstance(total, int):
        raise ConfigError("strategy.lora.layers: this model's config has no num_hidden_layers; leave it unset.")
    if top_layers >= total:
        return None
    return list(range(total - top_layers, total))


__all__ = ["ADAPTERS_DIR", "adapted_layers", "add_lora", "merge_lora"]
