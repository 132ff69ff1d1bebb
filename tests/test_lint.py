"""The repository is lint-clean and formatted: ruff check and ruff format --check
(configured in pyproject.toml) pass on the whole tree."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("ruff")
    if beside_python.exists():
        return [str(beside_python)]
    on_path = shutil.which("ruff")
    if on_path:
        return [on_path]
    probe = subprocess.run(
        [sys.executable, "-m", "ruff", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "ruff"]
    pytest.skip("ruff is not installed; install the dev extra: pip install -e '.[dev]'")


def _run_ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_ruff_command(), *args, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_ruff_check_passes():
    result = _run_ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes():
    result = _run_ruff("format", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
