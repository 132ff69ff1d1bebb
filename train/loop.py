"""The training loop: compile once, then per epoch train, evaluate, checkpoint.

``fit`` is the programmatic entry point; it keeps everything in memory unless a
work directory is given, in which case it also checkpoints and can resume.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh
from tqdm.auto import tqdm

from train import steps
from train.checkpoint import Checkpoints
from train.config import Config
from train.data import MNIST
from train.model import MLP
from train.multihost import barrier

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; training stopped."""

    def __init__(
        self,
        epoch: int,
        step: int,
        last_good_epoch: int | None,
        *,
        what: str = "training loss is NaN or inf",
    ):
        self.epoch = epoch
        self.step = step
        self.last_good_epoch = last_good_epoch
        kept = (
            f"the checkpoint of epoch {last_good_epoch} is kept"
            if last_good_epoch is not None
            else "no epoch finished, so there is no checkpoint"
        )
        super().__init__(
            f"{what} at epoch {epoch}, step {step} (1-based, within the epoch); "
            f"stopped, and {kept}. Lower --learning-rate, set --grad-clip, or pick "
            "another --activation."
        )


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
      model: the trained MLP after the last epoch.
      history: one dict per epoch with ``epoch``, ``train_loss``,
        ``train_accuracy``, ``test_loss``, ``test_accuracy``, ``epoch_seconds``
        and ``learning_rate`` (accuracies are fractions in [0, 1]).
      best_test_accuracy: the highest test accuracy of any epoch.
      best_epoch: the epoch that reached it.
      num_params: scalar parameters of the model.
      devices: devices the batch was sharded over.
      compile_seconds: time to compile the epoch and evaluation functions.
      resumed_after_epoch: the checkpointed epoch this call continued from, 0
        for a fresh start.
    """

    model: MLP
    history: list[dict[str, float]]
    best_test_accuracy: float
    best_epoch: int
    num_params: int
    devices: int
    compile_seconds: float
    resumed_after_epoch: int = 0


def check_batch(config: Config, num_train: int, num_devices: int) -> list[str]:
    """Batch-size problems that depend on the data and the devices."""
    errors = []
    if config.batch_size > num_train:
        errors.append(
            f"batch_size {config.batch_size} is larger than the {num_train} training "
            "examples; pick a smaller --batch-size"
        )
    if config.batch_size % num_devices:
        errors.append(
            f"batch_size {config.batch_size} does not split evenly over "
            f"{num_devices} devices; pick a multiple of {num_devices}"
        )
    return errors


def _epoch_line(record: dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  "
        f"train loss {record['train_loss']:.4f} "
        f"acc {100 * record['train_accuracy']:.2f}%  "
        f"test loss {record['test_loss']:.4f} "
        f"acc {100 * record['test_accuracy']:.2f}%  "
        f"lr {record['learning_rate']:.2e}  {record['epoch_seconds']:.2f} s"
    )


class _Bar:
    """A tqdm bar per epoch that compiled code can advance through a callback."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: tqdm | None = None

    def start(self, epoch: int, epochs: int, total: int) -> None:
        if self.enabled:
            self.bar = tqdm(
                total=total, desc=f"epoch {epoch}/{epochs}", unit="step", leave=False
            )

    def update(self, step: Any) -> None:
        if self.bar is not None:
            self.bar.update(int(step) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _step_epoch(fns, bar, params, opt_state, images, labels, epoch):
    """One epoch dispatched step by step from Python; same metrics as the scan."""
    batches = fns.shuffle(epoch)
    losses, accuracies = [], []
    for step_number in range(fns.num_steps):
        params, opt_state, metrics = fns.train_step(
            params, opt_state, images, labels, batches, epoch, step_number
        )
        losses.append(metrics["loss"])
        accuracies.append(metrics["accuracy"])
        bar.update(step_number + 1)
    losses = jnp.stack(losses)
    bad = jnp.flatnonzero(~jnp.isfinite(losses), size=1, fill_value=-1)[0]
    summary = {
        "loss": losses.mean(),
        "accuracy": jnp.stack(accuracies).mean(),
        "learning_rate": fns.learning_rate(epoch),
        "first_bad_step": bad,
    }
    return params, opt_state, summary


def fit(
    config: Config,
    data: MNIST,
    *,
    workdir: str | Path | None = None,
    resume: bool = False,
    mesh: Mesh | None = None,
    progress: bool = False,
    on_epoch_end: Callable[[list[dict[str, float]]], None] | None = None,
) -> FitResult:
    """Trains the configured MLP on ``data`` and evaluates it after every epoch.

    Args:
      config: the run's configuration (``train.config.Config``).
      data: host arrays from ``train.data.load_mnist``.
      workdir: when given, checkpoints go to ``workdir/checkpoints`` (latest and
        best) after every epoch.
      resume: continue from the latest checkpoint in ``workdir`` when there is
        one; its history is returned as if this call had run those epochs.
      mesh: devices to shard each batch over (default: all devices).
      progress: show a tqdm bar per epoch.
      on_epoch_end: called with the history so far (see ``FitResult``) after
        each epoch, before that epoch is checkpointed.

    Raises:
      ValueError: the batch does not fit the data or the devices.
      NonFiniteLossError: the training loss became NaN or inf.
    """
    mesh = mesh if mesh is not None else steps.make_mesh()
    num_train = len(data.train_labels)
    errors = check_batch(config, num_train, mesh.size)
    if errors:
        raise ValueError("; ".join(errors))
    bar = _Bar(progress and jax.process_index() == 0)
    fns = steps.build(
        config,
        num_train=num_train,
        num_test=len(data.test_labels),
        mesh=mesh,
        progress=steps.Progress(
            bar.update, max(1, num_train // config.batch_size // 50)
        )
        if bar.enabled and config.scan_epoch
        else None,
    )
    device_data = steps.put_data(data, mesh)
    images, labels = device_data.train_images, device_data.train_labels
    test_images, test_labels = device_data.test_images, device_data.test_labels
    params, opt_state = fns.init()
    num_params = sum(x.size for x in jax.tree.leaves(params))

    history: list[dict[str, float]] = []
    # Orbax's first barrier is a device collective: meet here first so that a
    # process still initialising cannot make it time out.
    barrier("fit_built")
    checkpoints = Checkpoints(workdir) if workdir is not None else None
    if checkpoints is not None and resume:
        restored = checkpoints.restore(params, opt_state)
        if restored is not None:
            params, opt_state, record = restored
            history = record["history"]
            logger.info("Resuming after epoch %d from %s", record["epoch"], workdir)
        else:
            logger.info(
                "No checkpoint in %s to resume from; starting at epoch 1", workdir
            )

    # A checkpoint of epoch k holds the history of epochs 1..k.
    resumed_after_epoch = len(history)
    start = time.perf_counter()
    epoch_number = jnp.int32(resumed_after_epoch + 1)
    if config.scan_epoch:
        run_epoch = fns.train_epoch.lower(
            params, opt_state, images, labels, epoch_number
        ).compile()
    else:
        run_epoch = functools.partial(_step_epoch, fns, bar)
    run_evaluate = fns.evaluate.lower(params, test_images, test_labels).compile()
    compile_seconds = time.perf_counter() - start
    logger.info("Compiled in %.1f s", compile_seconds)
    # Processes compile at different speeds, and the first training step is a
    # device collective too.
    barrier("fit_compiled")

    try:
        for epoch in range(len(history) + 1, config.epochs + 1):
            bar.start(epoch, config.epochs, fns.num_steps)
            epoch_start = time.perf_counter()
            params, opt_state, metrics = run_epoch(
                params, opt_state, images, labels, jnp.int32(epoch)
            )
            metrics = jax.device_get(metrics)
            epoch_seconds = time.perf_counter() - epoch_start
            bar.close()
            if metrics["first_bad_step"] >= 0:
                last_good = history[-1]["epoch"] if history else None
                raise NonFiniteLossError(
                    epoch, int(metrics["first_bad_step"]) + 1, last_good
                )
            test = jax.device_get(run_evaluate(params, test_images, test_labels))
            if not (math.isfinite(metrics["loss"]) and math.isfinite(test["loss"])):
                # Every step's loss was finite, but the update of the last step
                # made the parameters NaN or inf (or the mean overflowed): this
                # epoch must not be checkpointed as a good one.
                last_good = history[-1]["epoch"] if history else None
                raise NonFiniteLossError(
                    epoch,
                    fns.num_steps,
                    last_good,
                    what="parameters became NaN or inf (test loss "
                    f"{float(test['loss'])}, mean training loss "
                    f"{float(metrics['loss'])})",
                )
            record = {
                "epoch": epoch,
                "train_loss": float(metrics["loss"]),
                "train_accuracy": float(metrics["accuracy"]),
                "test_loss": float(test["loss"]),
                "test_accuracy": float(test["accuracy"]),
                "epoch_seconds": epoch_seconds,
                "learning_rate": float(metrics["learning_rate"]),
            }
            is_best = all(
                record["test_accuracy"] > past["test_accuracy"] for past in history
            )
            history.append(record)
            logger.info(_epoch_line(record, config.epochs))
            if on_epoch_end is not None:
                on_epoch_end(history)
            if checkpoints is not None:
                checkpoints.save(
                    epoch,
                    params,
                    opt_state,
                    {"epoch": epoch, "history": history},
                    is_best=is_best,
                )
    finally:
        bar.close()
        if checkpoints is not None:
            checkpoints.close()

    best = max(history, key=lambda r: r["test_accuracy"]) if history else None
    return FitResult(
        model=nnx.merge(fns.graphdef, params),
        history=history,
        best_test_accuracy=best["test_accuracy"] if best else math.nan,
        best_epoch=best["epoch"] if best else 0,
        num_params=int(num_params),
        devices=mesh.size,
        compile_seconds=compile_seconds,
        resumed_after_epoch=resumed_after_epoch,
    )
