"""YAML file -> command-line overrides -> validated `RunConfig`, and back to YAML."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from fmkit.config.schema import RunConfig
from fmkit.errors import ConfigError


def load_config(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read an optional YAML file, apply dotted overrides (``{"train.epochs": 2}``), validate.

    Overrides win over the file; ``None`` values mean "not given" and are skipped.
    """
    raw: dict[str, Any] = {}
    source = "command-line options"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}. Create one with `fmkit init-config > {path.name}`.")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (data:, model:, train:...).")
        raw = loaded
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        _set_dotted(raw, dotted, value, source)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, source)) from None


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.key=value`` from the command line; the value is read as YAML (``3``, ``true``, ``1e-4``)."""
    if "=" not in text:
        raise ConfigError(f"Override '{text}' must look like section.key=value, for example train.epochs=2.")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def load_command_config(path: Path | str | None, flags: dict[str, Any], sets: Sequence[str] | None,
                        quiet: bool = False) -> RunConfig:
    """A command's config: the file, then its flags, then its `--set section.key=value` texts (which win);
    `--quiet` turns the progress bar off. One rule for every command that trains or reads data."""
    overrides = dict(flags)
    if quiet:
        overrides["train.progress"] = False
    for text in sets or []:
        key, value = parse_override(text)
        overrides[key] = value
    return load_config(path, overrides)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: '{part}' must be a section (a mapping), not {child!r}.")
        node = child
    node[parts[-1]] = value


def _explain(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            hint = _closest_key(err["loc"])
            problems.append(f"unknown key '{loc}'" + (f": did you mean '{hint}'?" if hint else "."))
        else:
            problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    advice = "Run `fmkit init-config` to see every valid key with its documentation."
    if len(problems) == 1:  # the common case stays one line on stderr
        return f"Invalid configuration ({source}): {problems[0]} {advice}"
    return "\n".join([f"Invalid configuration ({source}):", *(f"  {p}" for p in problems), advice])


def _closest_key(loc: tuple[int | str, ...]) -> str | None:
    """Suggest the valid key nearest to an unknown one, searching its own section first, then all."""
    model: type[BaseModel] = RunConfig
    prefix: list[str] = []
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
        prefix.append(str(part))
    wrong = str(loc[-1])
    local = difflib.get_close_matches(wrong, list(model.model_fields), n=1, cutoff=0.6)
    if local:
        return ".".join([*prefix, local[0]])
    everywhere = list(_all_keys(RunConfig))
    leaf = {k.rsplit(".", 1)[-1]: k for k in everywhere}
    match = difflib.get_close_matches(wrong, list(leaf), n=1, cutoff=0.6)
    return leaf[match[0]] if match else None


def _all_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_all_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def write_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config (every field, defaults included) as YAML."""
    from fmkit.utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def documented_default_yaml() -> str:
    """The default config as YAML with each field's documentation as a comment above it."""
    out = ["# fmkit run configuration. Every key is optional; command-line flags override this file.", ""]
    _emit(RunConfig(), out, indent=0)
    return "\n".join(out) + "\n"


def _emit(section: BaseModel, out: list[str], indent: int) -> None:
    pad = "  " * indent
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if field.description:
            out.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            out.append(f"{pad}{name}:")
            _emit(value, out, indent + 1)
            out.append("")
        else:
            dumped = yaml.safe_dump(value if not isinstance(value, Path) else str(value), default_flow_style=True)
            dumped = dumped.strip().removesuffix("...").strip()
            out.append(f"{pad}{name}: {dumped}")
