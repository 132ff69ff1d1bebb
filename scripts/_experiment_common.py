"""Command line, MNIST subsets, a short training loop and output writing shared by the
experiment scripts, so that each script holds only its own measurement."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
from _out import prepare_out as prepare_out
from flax import nnx

from train.data import MNIST, DataError, load_mnist
from train.model import MLP, cross_entropy_loss

FIGURE_DPI = 100


def build_parser(
    name: str, description: str, *, out_default: str | None = None
) -> argparse.ArgumentParser:
    """Return the parser every experiment shares: ``--out``, ``--quick``,
    ``--data-dir`` and ``--seed``; a script adds its own flags to it.

    Args:
      name: the script's name, also the default output folder ``out/<name>``.
      description: the ``--help`` text, usually the script's docstring.
      out_default: when given, ``--out`` defaults to None and its help shows this
        text instead, for a script that picks the folder itself.
    """
    parser = argparse.ArgumentParser(prog=f"scripts/{name}.py", description=description)
    parser.add_argument(
        "--out",
        type=Path,
        default=None if out_default else Path("out") / name,
        help="directory for the figure(s) and the JSON of measured numbers "
        f"(default: {out_default or Path('out') / name})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small MNIST subsets and few steps, for a fast check of the pipeline "
        "(under a minute per experiment on 2 CPU cores)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory holding the four MNIST IDX files (default: $MNIST_DIR, "
        "and TensorFlow Datasets when that is unset too)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="PRNG seed (default: %(default)s)"
    )
    return parser


def _to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return _to_json(np.asarray(value).tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity; null keeps the file readable everywhere.
        return None
    return value


def write_json(out: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``out/name.json``, replacing it only once fully written."""
    path = out / f"{name}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(_to_json(payload), indent=2) + "\n")
    partial.replace(path)
    return path


def save_figure(figure: Any, path: Path) -> Path:
    """Save a matplotlib figure as a small PNG and release its memory."""
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def use_agg_backend() -> None:
    """Select matplotlib's file-only backend, so scripts run without a display."""
    import matplotlib

    matplotlib.use("Agg")


def load_data(
    data_dir: Path | None,
    *,
    train_size: int | None = None,
    test_size: int | None = None,
) -> MNIST:
    """MNIST through the trainer's loader, cut to its first examples when asked
    (the IDX order is not sorted by class, so a prefix keeps every digit).

    Missing or invalid data ends the script with exit status 1 and the
    loader's message, which names the file and the remedy.
    """
    try:
        data = load_mnist(data_dir)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    return MNIST(
        data.train_images[:train_size],
        data.train_labels[:train_size],
        data.test_images[:test_size],
        data.test_labels[:test_size],
    )


def batch_indices(
    num_examples: int, steps: int, batch_size: int, seed: int
) -> np.ndarray:
    """``[steps, batch_size]`` example indices: reshuffled passes over the data, so
    each epoch sees every example once."""
    if batch_size > num_examples:
        raise ValueError(
            f"batch_size {batch_size} exceeds the {num_examples} training examples; "
            "pass a smaller batch or more data"
        )
    rng = np.random.default_rng(seed)
    per_epoch = num_examples // batch_size
    epochs = -(-steps // per_epoch)
    passes = [
        rng.permutation(num_examples)[: per_epoch * batch_size] for _ in range(epochs)
    ]
    order = np.concatenate(passes).reshape(-1, batch_size)
    return order[:steps].astype(np.int32)


def train_mlp(
    model: MLP,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    optimizer: optax.GradientTransformation,
    steps: int,
    batch_size: int,
    seed: int,
) -> np.ndarray:
    """Train ``model`` in place for ``steps`` minibatch steps of ``optimizer`` on the
    mean softmax cross-entropy, all steps in one compiled ``lax.scan``.

    The trainer's own loop schedules the learning rate over epochs; sweeps here need
    a fixed rate and step count, so this loop takes any optax transformation.

    Returns:
      float32 ``[steps]``, the loss of each step's batch before its update.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def batch_loss(params, batch_images, batch_labels):
        logits = nnx.merge(graphdef, params, rest)(batch_images)
        return cross_entropy_loss(logits, batch_labels)

    @jax.jit
    def run(params, opt_state, images, labels, order):
        def step(carry, indices):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(batch_loss)(
                params, images[indices], labels[indices]
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, opt_state), order)
        return params, losses

    order = batch_indices(len(labels), steps, batch_size, seed)
    params, losses = run(params, optimizer.init(params), images, labels, order)
    nnx.update(model, params)
    return np.asarray(losses)


def predict(model: MLP, images: np.ndarray, *, batch_size: int = 10_000) -> np.ndarray:
    """Logits ``[N, num_classes]`` of ``images``, evaluated in batches."""
    graphdef, state = nnx.split(model)
    logits_of = jax.jit(lambda state, batch: nnx.merge(graphdef, state)(batch))
    return np.concatenate(
        [
            np.asarray(logits_of(state, images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
    )


def evaluate_accuracy(model: MLP, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``images`` whose largest logit is at the label."""
    return float(np.mean(np.argmax(predict(model, images), axis=-1) == labels))
