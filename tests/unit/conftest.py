"""Fixtures shared by the unit tests of one area (the repository-wide ones are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def classifier_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny text classifier for the export tests (test_export.py, test_export_int8.py)."""
    from tests.unit.test_export import build_classifier

    return build_classifier(tiny_model, tmp_path_factory.mktemp("clf") / "model")


@pytest.fixture(scope="module")
def verify_csv(classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled file of that classifier's own predictions, for `--verify`."""
    from tests.unit.test_export import write_verify_csv

    return write_verify_csv(classifier_dir, tmp_path_factory.mktemp("verify") / "verify.csv")
