"""Orbax checkpoints of a run: the latest epoch and the best test accuracy so far.

Each checkpoint holds the parameters, the optimizer state and a JSON record (the
epoch, the per-epoch history, the best accuracy). Orbax writes into a temporary
folder and renames it when complete, so a process killed mid-save leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"


def _manager(directory: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1,
        create=True,
        # Both managers save the same epoch at once; distinct barrier names keep
        # their cross-process synchronisation apart.
        multiprocessing_options=ocp.options.MultiprocessingOptions(
            barrier_sync_key_prefix=directory.name
        ),
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


class Checkpoints:
    """The ``latest`` and ``best`` checkpoints under ``workdir/checkpoints``.

    Every process of a multi-host run must call ``save`` and ``restore``; Orbax
    coordinates the writes.
    """

    def __init__(self, workdir: str | Path):
        self.directory = Path(workdir) / CHECKPOINTS
        self.latest = _manager(self.directory / "latest")
        self.best = _manager(self.directory / "best")

    def save(
        self,
        epoch: int,
        params: Any,
        opt_state: Any,
        record: dict[str, Any],
        *,
        is_best: bool,
    ) -> None:
        """Saves ``epoch`` as the latest checkpoint, and as the best if ``is_best``.

        Writes finish in the background; ``close`` waits for them.
        """
        managers = [self.latest, self.best] if is_best else [self.latest]
        for manager in managers:
            manager.save(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(
                        {"params": params, "opt_state": opt_state}
                    ),
                    record=ocp.args.JsonSave(record),
                ),
            )

    def latest_epoch(self) -> int | None:
        return self.latest.latest_step()

    def restore(
        self, params: Any, opt_state: Any, *, which: str = "latest"
    ) -> tuple[Any, Any, dict[str, Any]] | None:
        """The newest complete checkpoint, shaped and sharded like the templates.

        Args:
          params, opt_state: arrays (or shape-dtype structs) whose structure,
            shapes, dtypes and shardings the restored values take.
          which: ``"latest"`` or ``"best"``.

        Returns:
          ``(params, opt_state, record)``, or None when there is no checkpoint.
        """
        manager = self.latest if which == "latest" else self.best
        epoch = manager.latest_step()
        if epoch is None:
            return None
        abstract = jax.tree.map(
            ocp.utils.to_shape_dtype_struct, {"params": params, "opt_state": opt_state}
        )
        restored = manager.restore(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()
            ),
        )
        state = restored["state"]
        return state["params"], state["opt_state"], restored["record"]

    def close(self) -> None:
        """Waits for pending writes and releases the managers."""
        for manager in (self.latest, self.best):
            manager.wait_until_finished()
            manager.close()


def load_model(workdir: str | Path, *, which: str = "best") -> nnx.Module:
    """The trained MLP of a finished or interrupted run in ``workdir``.

    Args:
      workdir: a work directory written by ``train_and_evaluate``.
      which: ``"best"`` (highest test accuracy) or ``"latest"`` checkpoint.

    Raises:
      FileNotFoundError: ``workdir`` holds no config or no such checkpoint.
    """
    from train.config import Config
    from train.steps import init_model, make_optimizer

    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path}: missing; is {workdir} a run's workdir?"
        )
    config = Config.from_json(json.loads(config_path.read_text()))
    model = nnx.eval_shape(lambda: init_model(config))
    graphdef, params = nnx.split(model)
    # Only the optimizer state's structure matters here, not the schedule.
    tx, _ = make_optimizer(config, 1)
    opt_state = jax.eval_shape(tx.init, params)
    checkpoints = Checkpoints(workdir)
    try:
        restored = checkpoints.restore(params, opt_state, which=which)
    finally:
        checkpoints.close()
    if restored is None:
        raise FileNotFoundError(
            f"{checkpoints.directory / which}: no checkpoint; train first with "
            f"python -m train --workdir {workdir}"
        )
    return nnx.merge(graphdef, restored[0])
