"""The output folder that every script's ``--out`` names."""

from __future__ import annotations

from pathlib import Path


def prepare_out(out: Path) -> Path:
    """Creates the output directory, refusing a path that is an existing file."""
    if out.exists() and not out.is_dir():
        raise SystemExit(
            f"--out {out} is an existing file; expected a directory. "
            "Pass a directory path (it is created if missing)."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out
