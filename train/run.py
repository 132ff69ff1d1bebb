"""``train_and_evaluate``: one full run with every output in its work directory."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import jax
from flax import nnx

from train import outputs, steps
from train.config import Config, check
from train.data import MNIST, load_mnist
from train.loop import FitResult, check_batch, fit
from train.multihost import barrier

logger = logging.getLogger(__name__)


def _header(config: Config, data: MNIST, num_params: int) -> list[str]:
    devices = jax.devices()
    layers = "-".join(map(str, (28 * 28, *config.hidden, 10)))
    num_steps = steps.steps_per_epoch(config, len(data.train_labels))
    return [
        f"jax {jax.__version__} on {devices[0].platform}: {len(devices)} device(s) "
        f"in {jax.process_count()} process(es), {jax.local_device_count()} local",
        f"MNIST: {len(data.train_labels):,} train and {len(data.test_labels):,} test "
        f"images from {config.data_dir or 'TensorFlow Datasets'}",
        f"MLP {layers}, {config.activation}, dropout {config.dropout} "
        f"(input {config.input_dropout}): "
        f"{num_params:,} parameters",
        f"{config.optimizer}, peak learning rate {config.learning_rate:g}, weight "
        f"decay {config.weight_decay:g}, batch {config.batch_size} ({num_steps} "
        f"steps/epoch), {config.epochs} epochs, seed {config.seed}",
    ]


def train_and_evaluate(
    config: Config,
    workdir: str | Path | None = None,
    *,
    data: MNIST | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    start_time: float | None = None,
) -> FitResult:
    """Trains, evaluates every epoch, and writes all outputs to the work directory.

    Args:
      config: the run's configuration; checked before anything is written.
      workdir: replaces ``config.workdir`` when given.
      data: MNIST host arrays; loaded from ``config.data_dir`` when None.
      resume: continue the run in ``workdir`` from its latest checkpoint (its
        config must match, see ``outputs.check_workdir``).
      overwrite: replace a run already in ``workdir``.
      progress: show a tqdm bar per epoch.
      start_time: ``time.perf_counter()`` at process start, so that
        ``summary.json``'s ``total_seconds`` includes start-up; default now.

    Writes ``config.json``, ``metrics.jsonl``, ``summary.json``, TensorBoard
    events, ``curves.png`` and ``checkpoints/{latest,best}``; in a multi-process
    run only process 0 writes files other than checkpoints.

    Raises:
      ValueError: invalid config, or a batch that does not fit data or devices.
      outputs.WorkdirError: ``workdir`` holds another run (or this one, without
        ``resume``) and ``overwrite`` is off.
      train.data.DataError: the data is missing or invalid.
      train.loop.NonFiniteLossError: the loss became NaN or inf (the last good
        checkpoint and the metrics so far are kept).
    """
    start_time = time.perf_counter() if start_time is None else start_time
    if workdir is not None:
        config = dataclasses.replace(config, workdir=str(workdir))
    errors = check(config)
    if data is None:
        data = load_mnist(config.data_dir)
    errors += check_batch(config, len(data.train_labels), jax.device_count())
    if errors:
        raise ValueError("invalid config: " + "; ".join(errors))
    outputs.check_workdir(config, resume=resume, overwrite=overwrite)
    # Every process checks the directory before process 0 starts writing to it.
    barrier("workdir_checked")

    writer = jax.process_index() == 0
    workdir = Path(config.workdir)
    if writer:
        outputs.prepare_workdir(config, overwrite=overwrite)
    num_params = sum(
        x.size
        for x in jax.tree.leaves(
            nnx.state(nnx.eval_shape(lambda: steps.init_model(config)))
        )
    )
    for line in _header(config, data, num_params):
        logger.info(line)
    logger.info("Writing to %s", workdir)

    preloading = outputs.preload() if writer else None
    tensorboard = None
    written = 0

    def on_epoch_end(history: list[dict[str, float]]) -> None:
        nonlocal written, tensorboard
        if not writer:
            return
        if tensorboard is None:
            preloading.join()
            tensorboard = outputs.TensorBoard(workdir)
        # A resumed run's first call rewrites the file from the checkpoint's
        # history, dropping any epoch that was logged but never checkpointed.
        if written == 0:
            outputs.write_metrics(workdir, history)
        else:
            outputs.append_metrics(workdir, history[-1])
        written += 1
        tensorboard.write(history[-1])

    try:
        result = fit(
            config,
            data,
            workdir=workdir,
            resume=resume,
            progress=progress,
            on_epoch_end=on_epoch_end,
        )
    finally:
        if tensorboard is not None:
            tensorboard.close()

    if writer:
        preloading.join()
        history = result.history
        outputs.write_metrics(workdir, history)
        outputs.write_curves(workdir / outputs.CURVES, history)
        summary = {
            "test_accuracy": history[-1]["test_accuracy"],
            "best_test_accuracy": result.best_test_accuracy,
            "best_epoch": result.best_epoch,
            "test_loss": history[-1]["test_loss"],
            "epochs": len(history),
            # This invocation's wall time; a resumed run's earlier sessions are
            # in train_seconds, which sums every epoch.
            "total_seconds": time.perf_counter() - start_time,
            "resumed_after_epoch": result.resumed_after_epoch,
            "train_seconds": sum(record["epoch_seconds"] for record in history),
            "compile_seconds": result.compile_seconds,
            "devices": result.devices,
            "processes": jax.process_count(),
            "platform": jax.devices()[0].platform,
            "num_params": result.num_params,
        }
        outputs.write_json(workdir / outputs.SUMMARY, summary)
    return result
