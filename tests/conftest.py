"""Shared fixtures: generated Titanic-format data (never Kaggle's files) and a clean working folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from competitions.titanic.synthetic import generate

SHARED_TITANIC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "titanic"


@pytest.fixture(scope="session")
def titanic_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated Titanic-format competition folder (160 train / 60 test rows), made once per session."""
    d = tmp_path_factory.mktemp("titanic_src")
    generate(d, n_train=160, n_test=60, seed=7, solution_path=d / "solution.csv")
    return d


@pytest.fixture
def titanic_dir(titanic_source: Path, tmp_path: Path) -> Path:
    """A private copy of the generated folder that a test may damage."""
    d = tmp_path / "titanic"
    shutil.copytree(titanic_source, d)
    return d


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty folder so default outputs (submissions/, runs/) land in tmp."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


@pytest.fixture
def offline_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No pretrained weights anywhere and no download: $KIT_WEIGHTS unset, torch hub's and Hugging Face's caches
    empty folders under tmp_path, KIT_OFFLINE set; kit's memo of found weights cleared. Returns the tmp folder."""
    from huggingface_hub import constants

    from kit.vision import weights

    monkeypatch.delenv("KIT_WEIGHTS", raising=False)
    monkeypatch.setenv("KIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(weights, "_FOUND", {})
    return tmp_path
