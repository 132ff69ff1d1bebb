"""What a run leaves in its work directory, and the checks made before writing it.

``config.json`` (the resolved config), ``metrics.jsonl`` (one object per epoch),
``summary.json``, TensorBoard event files, ``curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from train.checkpoint import CHECKPOINTS
from train.config import Config
from train.data import resolve_data_dir

logger = logging.getLogger(__name__)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CURVES = "curves.png"
EVENTS_PREFIX = "events.out.tfevents."


class WorkdirError(ValueError):
    """The work directory cannot take this run without losing another one."""


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file, then renames it over ``path``."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_json(path: Path, values: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(values, indent=2) + "\n")


def _outputs(workdir: Path) -> list[Path]:
    """The files and folders a run writes, those that exist."""
    named = [workdir / name for name in (CONFIG, METRICS, SUMMARY, CURVES, CHECKPOINTS)]
    events = sorted(workdir.glob(f"{EVENTS_PREFIX}*"))
    return [path for path in named if path.exists()] + events


def _config_differences(stored: dict[str, Any], config: Config) -> list[str]:
    try:
        stored_fields = Config.from_json(stored).run_fields()
    except TypeError as err:
        return [f"unreadable stored config ({err})"]
    given = config.run_fields()
    return [
        f"{name}: {stored_fields.get(name)!r} there, {given[name]!r} now"
        for name in given
        if stored_fields.get(name) != given[name]
    ]


def check_workdir(config: Config, *, resume: bool, overwrite: bool) -> None:
    """Refuses a work directory whose run this one would clobber.

    A directory holding a run is taken only with ``overwrite`` (the run is
    replaced), or with ``resume`` when its config has the same run fields.

    Raises:
      WorkdirError: naming the directory, the conflict and the flag that fixes it;
        also for a work directory in the data directory.
    """
    workdir = Path(config.workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"workdir {workdir} is a file; pick a directory")
    data_dir = resolve_data_dir(config.data_dir)
    if data_dir:
        data = Path(data_dir).resolve()
        if workdir.resolve() == data or data in workdir.resolve().parents:
            raise WorkdirError(
                f"workdir {workdir} lies in the data directory {data_dir}, which "
                "is only read; pick a --workdir outside it"
            )
    for parent in workdir.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise WorkdirError(
                    f"workdir {workdir} lies inside {parent}, which is a file; pick "
                    "a path whose folders are folders"
                )
            break
    if not workdir.exists() or overwrite or not _outputs(workdir):
        return
    config_path = workdir / CONFIG
    if not config_path.is_file():
        raise WorkdirError(
            f"workdir {workdir} holds outputs of a run but no {CONFIG}; pass "
            "--overwrite to replace them, or pick another --workdir"
        )
    try:
        stored = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise WorkdirError(
            f"{config_path} cannot be read ({err}); pass --overwrite to replace the "
            "run, or pick another --workdir"
        ) from err
    differences = _config_differences(stored, config)
    if differences:
        raise WorkdirError(
            f"workdir {workdir} holds a run with a different config "
            f"({'; '.join(differences)}); pass --overwrite to replace it, or pick "
            "another --workdir"
        )
    if not resume:
        raise WorkdirError(
            f"workdir {workdir} already holds this run; pass --resume to continue it, "
            "--overwrite to start again, or pick another --workdir"
        )


def prepare_workdir(config: Config, *, overwrite: bool) -> Path:
    """Creates the work directory (clearing a run's outputs when ``overwrite``).

    Raises:
      WorkdirError: the directory or its config cannot be written.
    """
    workdir = Path(config.workdir)
    try:
        if overwrite and workdir.is_dir():
            for path in _outputs(workdir):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        workdir.mkdir(parents=True, exist_ok=True)
        write_json(workdir / CONFIG, config.to_json())
    except OSError as err:
        raise WorkdirError(
            f"workdir {workdir} cannot be written ({err.strerror or err}); pick a "
            "--workdir in a folder you can write to"
        ) from err
    return workdir


def write_metrics(workdir: Path, history: Iterable[dict[str, float]]) -> None:
    """Replaces ``metrics.jsonl`` with ``history``, one JSON object per line."""
    write_atomic(
        workdir / METRICS, "".join(json.dumps(record) + "\n" for record in history)
    )


def append_metrics(workdir: Path, record: dict[str, float]) -> None:
    with open(workdir / METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")


def _import_tensorboardx():
    # tensorboardX imports PyTorch whenever it is installed, only to accept its
    # tensors, which costs seconds; hiding it for the import keeps start-up fast.
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None
    try:
        import tensorboardX
    finally:
        if hide:
            del sys.modules["torch"]
    return tensorboardX


def preload() -> threading.Thread:
    """Imports the TensorBoard writer and matplotlib in a background thread.

    Both take a second or more to import; started before compilation, which
    keeps one core busy, the imports are done by the time they are needed.
    """

    def load() -> None:
        _import_tensorboardx()
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

    thread = threading.Thread(target=load, name="preload-outputs", daemon=True)
    thread.start()
    return thread


class TensorBoard:
    """Scalars of every epoch as TensorBoard events in the work directory."""

    def __init__(self, workdir: Path):
        tensorboardx = _import_tensorboardx()
        self.writer = tensorboardx.SummaryWriter(logdir=str(workdir), flush_secs=5)

    def write(self, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        for name, value in record.items():
            if name == "epoch":
                continue
            # train_loss -> train/loss groups the split's curves in TensorBoard.
            split, _, metric = name.partition("_")
            tag = f"{split}/{metric}" if split in ("train", "test") else name
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def write_curves(path: Path, history: list[dict[str, float]]) -> None:
    """Plots loss and accuracy per epoch, train and test, into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("test", "--")):
        loss_axes.plot(
            epochs,
            [r[f"{split}_loss"] for r in history],
            style,
            marker=".",
            label=split,
        )
        accuracy_axes.plot(
            epochs,
            [100 * r[f"{split}_accuracy"] for r in history],
            style,
            marker=".",
            label=split,
        )
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="Loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)
