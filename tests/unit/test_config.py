"""The typed run config: unknown keys get the closest valid name, overrides win, init-config round-trips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from fmkit.config import RunConfig, documented_default_yaml, load_config, parse_override, write_config
from fmkit.errors import ConfigError
from tests.conftest import REPO


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("yaml_text", "wrong", "suggestion"),
    [
        ("train:\n  epoch: 2\n", "train.epoch", "train.epochs"),
        ("train:\n  learning_rte: 0.001\n", "train.learning_rte", "train.learning_rate"),
        ("data:\n  text_col: body\n", "data.text_col", "data.text_column"),
        ("trian:\n  epochs: 2\n", "trian", "train"),
        # A key put in the wrong section: the suggestion names the section where it lives.
        ("model:\n  learning_rate: 0.1\n", "model.learning_rate", "train.learning_rate"),
    ],
)
def test_unknown_key_suggests_closest(tmp_path: Path, yaml_text: str, wrong: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml(tmp_path / "run.yaml", yaml_text))
    message = str(info.value)
    assert f"unknown key '{wrong}'" in message
    assert f"did you mean '{suggestion}'" in message
    assert str(tmp_path / "run.yaml") in message  # names the file


def test_unknown_override_key_suggests_closest() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'train\.warmup_ratio'"):
        load_config(None, {"train.warmup_ratoi": 0.1})


def test_unknown_key_without_any_close_name() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"train.zzzzzzzz": 1})
    assert "unknown key 'train.zzzzzzzz'." in str(info.value)
    assert "did you mean" not in str(info.value)


def test_overrides_win_over_yaml(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "run.yaml", "train:\n  epochs: 5\n  seed: 1\ndata:\n  max_length: 64\n")
    cfg = load_config(path, {"train.epochs": 2, "train.seed": None, "eval.batch_size": 16})
    assert cfg.train.epochs == 2  # the override wins
    assert cfg.train.seed == 1  # None means "not given": the file's value stays
    assert cfg.data.max_length == 64  # untouched keys come from the file
    assert cfg.eval.batch_size == 16  # and overrides may add keys the file lacks


def test_invalid_values_are_reported_with_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml(tmp_path / "run.yaml", "train:\n  batch_size: 0\n  mixed_precision: fp8\n"))
    message = str(info.value)
    assert "train.batch_size" in message and "train.mixed_precision" in message


@pytest.mark.parametrize(
    ("text", "message"),
    [("train: [1, 2\n", "not valid YAML"), ("- a\n- b\n", "top level must be a mapping"),
     ("train: 3\n", "train")],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_yaml(tmp_path / "run.yaml", text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_is_the_default(tmp_path: Path) -> None:
    assert load_config(write_yaml(tmp_path / "run.yaml", "")) == RunConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("train.epochs=2", ("train.epochs", 2)), ("train.learning_rate=0.001", ("train.learning_rate", 0.001)),
     ("train.progress=false", ("train.progress", False)), ("data.text_column=body", ("data.text_column", "body")),
     ("data.text_column=a=b", ("data.text_column", "a=b"))],
)
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


def test_exponent_override_becomes_a_float() -> None:
    # YAML 1.1 reads "1e-4" as a string; the typed config still turns it into the float the user meant.
    key, value = parse_override("train.learning_rate=1e-4")
    assert load_config(None, {key: value}).train.learning_rate == pytest.approx(1e-4)


def test_parse_override_needs_equals() -> None:
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("train.epochs")


def test_init_config_output_loads_back_as_the_default(tmp_path: Path) -> None:
    text = documented_default_yaml()
    assert "# Passes over the training data" in text  # documented: each field's description as a comment
    path = write_yaml(tmp_path / "run.yaml", text)
    assert load_config(path) == RunConfig()


def test_init_config_cli_output_loads_back(tmp_path: Path) -> None:
    proc = subprocess.run([str(Path(__import__("sys").executable)), "-m", "fmkit", "init-config"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert load_config(write_yaml(tmp_path / "run.yaml", proc.stdout)) == RunConfig()


def test_written_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, {"train.epochs": 1.5, "data.train": "x.csv", "model.name": "some/folder"})
    write_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def _shipped_run_configs() -> list[Path]:
    """Every YAML file tracked in the repository that is a run config (top-level keys are config sections)."""
    listed = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], capture_output=True, text=True, cwd=REPO)
    sections = set(RunConfig.model_fields)
    found = []
    for name in listed.stdout.split():
        loaded = yaml.safe_load((REPO / name).read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and set(loaded) & sections and (REPO / name).is_file():
            found.append(REPO / name)
    return found


@pytest.mark.parametrize("path", _shipped_run_configs() or [None], ids=lambda p: str(p.relative_to(REPO)) if p else "none")
def test_every_shipped_config_validates(path: Path | None) -> None:
    if path is None:
        pytest.skip("no YAML run config is tracked in the repository yet")
    load_config(path)


def test_a_bare_no_is_the_no_precision_not_false(tmp_path: Path) -> None:
    # YAML 1.1 reads `no` as False: the documented `train.mixed_precision: no` must still load.
    from_file = load_config(write_yaml(tmp_path / "run.yaml", "train:\n  mixed_precision: no\n"))
    key, value = parse_override("train.mixed_precision=no")
    from_flag = load_config(overrides={key: value})
    assert from_file.train.mixed_precision == from_flag.train.mixed_precision == "no"
    with pytest.raises(ConfigError, match=r"train\.mixed_precision"):
        load_config(write_yaml(tmp_path / "yes.yaml", "train:\n  mixed_precision: yes\n"))
