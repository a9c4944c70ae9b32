"""Lint and type checks are part of the suite: ruff (E, F, I, UP, B) and mypy
(strict on protocol/ and codec/, typed defs everywhere else; see setup.cfg)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.timeout(180)
def test_ruff() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "neurtmp", "tests", "bench", "examples"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_mypy() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "neurtmp"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
