"""The CLI's help is complete: every flag is described, every command ends with examples that parse, --version."""

from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from pathlib import Path

import pytest

import fmkit
from fmkit.cli import build_parser, main
from fmkit.cli.examples import EXAMPLES, iter_parsers

REPO = Path(__file__).resolve().parents[2]
PARSER = build_parser()
COMMANDS = list(iter_parsers(PARSER))


def command_id(path: tuple[str, ...]) -> str:
    return " ".join(("fmkit", *path))


def test_every_flag_and_argument_has_a_help_text() -> None:
    missing = [f"{command_id(path)} {'/'.join(action.option_strings) or action.dest}"
               for path, parser, _ in COMMANDS for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()]
    assert not missing, "add help= to: " + ", ".join(missing)


def test_every_command_has_a_one_line_summary() -> None:
    missing = [command_id(path) for path, parser, _ in COMMANDS if not (parser.description or "").strip()]
    assert not missing, missing


def test_the_examples_table_covers_exactly_the_commands() -> None:
    paths = {path for path, _, _ in COMMANDS}
    assert sorted(paths - set(EXAMPLES)) == [], "commands without examples in fmkit/cli/examples.py"
    assert sorted(set(EXAMPLES) - paths) == [], "examples for commands that do not exist"


def fmkit_argv(example: str) -> list[str]:
    """The fmkit part of an example line: after a `cmd |` pipe, before a `> file` redirection."""
    command = example.split(" | ")[-1]
    words = shlex.split(command)
    if ">" in words:
        words = words[: words.index(">")]
    assert words[0] == "fmkit", example
    return words[1:]


@pytest.mark.parametrize("path", sorted(EXAMPLES), ids=command_id)
def test_each_example_is_a_valid_command_line(path: tuple[str, ...]) -> None:
    assert 1 <= len(EXAMPLES[path]) <= 2
    for example in EXAMPLES[path]:
        argv = fmkit_argv(example)
        args = PARSER.parse_args(argv)  # exits (fails the test) on an unknown flag or a missing argument
        assert callable(args.func), example
        if path:  # a command's example runs that command (or, for a group, one of its sub-commands)
            assert tuple(argv[: len(path)]) == path, example


@pytest.mark.parametrize("path", [p for p, _, _ in COMMANDS], ids=command_id)
def test_help_ends_with_the_examples(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*path, "--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out.rstrip().splitlines()
    examples = [f"  {line}" for line in EXAMPLES[path]]
    assert shown[-len(examples) - 1 :] == ["examples:", *examples]  # verbatim, not re-wrapped


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"fmkit \d+\.\d+\.\d+", out), out
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert out == f"fmkit {fmkit.__version__}" == f"fmkit {declared}"
