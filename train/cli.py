"""Command line of the trainer: flags over a preset, checks, then one run.

Exit status: 0 trained; 1 the data is missing or invalid; 2 usage error (bad
flag, or a work directory holding another run); 3 the loss became NaN or inf.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from train.config import OPTIMIZERS, PRESETS, Config, check
from train.data import resolve_data_dir

logger = logging.getLogger("train")

EXIT_DATA_ERROR = 1
EXIT_NON_FINITE = 3


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _float(text: str, *, positive: bool) -> float:
    kind = "a positive number" if positive else "a number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _float(text, positive=True)


def _non_negative_float(text: str) -> float:
    return _float(text, positive=False)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 512,512, got {text!r}"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"expected layer sizes of at least 1, got {text!r}"
        )
    return sizes


def _activation(text: str) -> str:
    from jax_acts import names

    if text not in names():
        raise argparse.ArgumentTypeError(
            f"unknown activation {text!r}; choose one of {', '.join(names())}"
        )
    return text


def _default_text(field: str) -> str:
    """``default: X`` from the default preset, plus the quick preset's value."""

    def show(value: object) -> str:
        if isinstance(value, tuple):
            return ",".join(map(str, value))
        return str(value)

    default = getattr(PRESETS["default"], field)
    quick = getattr(PRESETS["quick"], field)
    text = f"default: {show(default)}"
    if quick != default:
        text += f"; quick: {show(quick)}"
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description=(
            "Train a Flax NNX MLP on MNIST. A preset sets every value; the flags "
            "given override it."
        ),
        epilog=(
            "Exit status: 0 trained, 1 data missing or invalid, 2 usage error, "
            "3 loss became NaN or inf."
        ),
    )

    def add(flag: str, field: str, help_text: str, **kwargs) -> None:
        parser.add_argument(
            flag,
            dest=field,
            default=None,
            help=f"{help_text} ({_default_text(field)})",
            **kwargs,
        )

    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="starting values for every flag below (default: default)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder of the four MNIST IDX files, gzip or raw (default: $MNIST_DIR, "
        "else TensorFlow Datasets)",
    )
    add("--workdir", "workdir", "where outputs and checkpoints go")
    add("--epochs", "epochs", "passes over the training set", type=_positive_int)
    add(
        "--batch-size",
        "batch_size",
        "global batch, split over all devices",
        type=_positive_int,
    )
    add("--hidden", "hidden", "hidden layer sizes, comma-separated", type=_hidden)
    add(
        "--activation",
        "activation",
        "hidden activation from jax_acts",
        type=_activation,
    )
    add("--optimizer", "optimizer", "optimizer", choices=OPTIMIZERS)
    add(
        "--learning-rate",
        "learning_rate",
        "peak learning rate after warm-up, then cosine decay to 0",
        type=_positive_float,
    )
    add(
        "--weight-decay",
        "weight_decay",
        "decoupled weight decay of the weight matrices",
        type=_non_negative_float,
    )
    add(
        "--dropout",
        "dropout",
        "drop probability after each hidden activation",
        type=_non_negative_float,
    )
    add(
        "--input-dropout",
        "input_dropout",
        "drop probability of each input pixel",
        type=_non_negative_float,
    )
    add(
        "--seed",
        "seed",
        "seed of initialisation, shuffling and dropout",
        type=_non_negative_int,
    )
    add(
        "--warmup-epochs",
        "warmup_epochs",
        "epochs of linear learning-rate warm-up",
        type=_non_negative_float,
    )
    add("--momentum", "momentum", "momentum of SGD", type=_non_negative_float)
    add(
        "--grad-clip",
        "grad_clip",
        "clip gradients to this global norm, 0 for no clipping",
        type=_non_negative_float,
    )
    add(
        "--max-norm",
        "max_norm",
        "cap on each unit's incoming weight norm after every step, 0 for none",
        type=_non_negative_float,
    )
    add(
        "--label-smoothing",
        "label_smoothing",
        "label smoothing of the training targets",
        type=_non_negative_float,
    )
    add(
        "--scan-epoch",
        "scan_epoch",
        "run each epoch as one compiled lax.scan; --no-scan-epoch dispatches "
        "every step from Python",
        action=argparse.BooleanOptionalAction,
    )
    run = parser.add_mutually_exclusive_group()
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --workdir from its latest checkpoint; flags left "
        "out take the run's values, flags given must match them",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --workdir",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the per-epoch progress bar"
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first, for multi-host runs; "
        "cluster settings are detected, or given with the three flags below",
    )
    parser.add_argument(
        "--coordinator-address",
        default=None,
        help="host:port of process 0 (or $JAX_COORDINATOR_ADDRESS)",
    )
    parser.add_argument(
        "--num-processes",
        type=_positive_int,
        default=None,
        help="number of processes of a multi-host run (default: detected)",
    )
    parser.add_argument(
        "--process-id",
        type=_non_negative_int,
        default=None,
        help="this process's rank, 0 writes the outputs (default: detected)",
    )
    return parser


def _stored_config(workdir: str) -> Config | None:
    """The config of the run in ``workdir``, or None when there is none to read
    (``outputs.check_workdir`` then says what is wrong with the directory)."""
    try:
        return Config.from_json(json.loads((Path(workdir) / "config.json").read_text()))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def resolve(args: argparse.Namespace) -> Config:
    """The preset with the flags given on the command line replacing its values.

    With ``--resume``, the run already in the work directory takes the preset's
    place: flags left out continue it as configured, and flags given must match
    it (``outputs.check_workdir`` refuses a difference).
    """
    config = PRESETS[args.preset or "default"]
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Config)
        if field.name not in ("preset", "data_dir")
        and getattr(args, field.name, None) is not None
    }
    data_dir = resolve_data_dir(args.data_dir)
    config = dataclasses.replace(config, data_dir=data_dir, **overrides)
    stored = _stored_config(config.workdir) if getattr(args, "resume", False) else None
    if stored is not None:
        if args.preset is not None:
            overrides["preset"] = args.preset
        overrides["workdir"] = config.workdir
        # Data given now wins; otherwise the run reads the data it started on.
        config = dataclasses.replace(
            stored, data_dir=data_dir or stored.data_dir, **overrides
        )
    return config


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        # The stream is looked up on every write, so nothing is stored.
        pass


def _configure_logging() -> None:
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (see the module docstring)."""
    start_time = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    config = resolve(args)
    errors = check(config)
    multihost = {
        "--coordinator-address": args.coordinator_address,
        "--num-processes": args.num_processes,
        "--process-id": args.process_id,
    }
    given = [flag for flag, value in multihost.items() if value is not None]
    if given and not args.distributed:
        errors.append(
            f"{', '.join(given)} only apply to a multi-host run; add --distributed, "
            "or leave them out to train on this host alone"
        )
    if errors:
        parser.error("; ".join(errors))
    _configure_logging()

    import jax

    if args.distributed:
        jax.distributed.initialize(
            coordinator_address=args.coordinator_address,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
        if jax.process_index() != 0:
            # Every process runs the same epochs; process 0 speaks for them.
            logger.setLevel(logging.WARNING)

    from train.data import DataError, load_mnist
    from train.loop import NonFiniteLossError, check_batch
    from train.outputs import WorkdirError, check_workdir
    from train.run import train_and_evaluate

    try:
        data = load_mnist(config.data_dir)
    except DataError as err:
        logger.error("error: %s", err)
        return EXIT_DATA_ERROR
    errors = check_batch(config, len(data.train_labels), jax.device_count())
    if errors:
        parser.error("; ".join(errors))
    try:
        check_workdir(config, resume=args.resume, overwrite=args.overwrite)
    except WorkdirError as err:
        parser.error(str(err))

    try:
        result = train_and_evaluate(
            config,
            data=data,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            start_time=start_time,
        )
    except NonFiniteLossError as err:
        logger.error("error: %s", err)
        return EXIT_NON_FINITE
    except WorkdirError as err:
        parser.error(str(err))

    if jax.process_index() == 0:
        final = result.history[-1]
        seconds = time.perf_counter() - start_time
        logger.info(
            "Wrote config.json, metrics.jsonl, summary.json, curves.png, TensorBoard "
            "events and checkpoints/{latest,best} to %s",
            config.workdir,
        )
        print(
            f"test accuracy {100 * final['test_accuracy']:.2f}% after "
            f"{final['epoch']} epochs (best {100 * result.best_test_accuracy:.2f}% at "
            f"epoch {result.best_epoch}), {seconds:.1f} s"
        )
    return 0
