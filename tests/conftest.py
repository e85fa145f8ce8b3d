import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "raw"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The refresh (without Prefect) on the shipped sample, once per session."""
    from annex.pipeline import run
    out = tmp_path_factory.mktemp("out")
    summary = run(RAW, out)
    return out / "annex.duckdb", summary


@pytest.fixture()
def raw_copy(tmp_path):
    """A writable copy of raw/ to damage in a test."""
    dst = tmp_path / "raw"
    shutil.copytree(RAW, dst, ignore=shutil.ignore_patterns("*.py", "README.md"))
    return dst
