"""The trainer's configuration: one frozen dataclass, its presets and its checks.

Every command-line flag maps to one field; a preset gives every field a value and
flags given on the command line replace the preset's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

OPTIMIZERS = ("adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a training run.

    Attributes:
      preset: the preset the other fields started from.
      data_dir: folder of the four MNIST IDX files; None means ``MNIST_DIR``,
        then TensorFlow Datasets.
      workdir: where outputs and checkpoints go.
      epochs: passes over the training split.
      batch_size: global batch, split evenly over all devices.
      hidden: sizes of the hidden layers.
      activation: hidden activation, a name known to ``jax_acts.get``.
      optimizer: ``"adamw"`` or ``"sgd"`` (with momentum).
      learning_rate: peak learning rate, reached after the warm-up.
      weight_decay: decoupled weight decay on the weight matrices (not biases).
      dropout: drop probability after each hidden activation while training.
      input_dropout: drop probability of each input pixel while training.
      seed: seeds initialisation, shuffling and dropout.
      warmup_epochs: epochs of linear warm-up from 0 before the cosine decay.
      momentum: momentum of SGD (AdamW uses its first-moment decay 0.9).
      grad_clip: clip gradients to this global norm; 0 turns clipping off.
      max_norm: after each step, rescale every unit's incoming weights to at
        most this L2 norm; 0 turns the constraint off.
      label_smoothing: mass spread uniformly over all classes in the targets.
      scan_epoch: run a whole epoch as one compiled ``lax.scan`` (else one
        compiled call per step).
    """

    preset: str = "default"
    data_dir: str | None = None
    workdir: str = "runs/default"
    epochs: int = 40
    batch_size: int = 128
    hidden: tuple[int, ...] = (1024, 1024)
    activation: str = "relu"
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    dropout: float = 0.3
    input_dropout: float = 0.1
    seed: int = 0
    warmup_epochs: float = 1.0
    momentum: float = 0.9
    grad_clip: float = 0.0
    max_norm: float = 0.0
    label_smoothing: float = 0.0
    scan_epoch: bool = True

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready values (tuples become lists)."""
        values = dataclasses.asdict(self)
        values["hidden"] = list(self.hidden)
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Config:
        """Inverse of ``to_json``; unknown keys raise ``TypeError``."""
        values = dict(values)
        values["hidden"] = tuple(values.get("hidden", cls.hidden))
        return cls(**values)

    def run_fields(self) -> dict[str, Any]:
        """The fields that change results; where the data and outputs live do not."""
        values = self.to_json()
        for name in ("data_dir", "workdir"):
            values.pop(name)
        return values


PRESETS: dict[str, Config] = {
    "default": Config(),
    "quick": Config(
        preset="quick",
        workdir="runs/quick",
        epochs=4,
        batch_size=256,
        hidden=(512, 512),
        learning_rate=2e-3,
        dropout=0.0,
        input_dropout=0.0,
        warmup_epochs=0.25,
        label_smoothing=0.1,
    ),
}


def check(config: Config) -> list[str]:
    """Returns one message per invalid field (empty when the config is valid).

    Checks that need the data (a batch larger than the training split) or the
    devices (a batch that does not split evenly) are made where those are known.
    """
    from jax_acts import names

    errors = []

    def positive_int(name: str) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(f"{name} must be a positive integer, got {value!r}")

    def number(name: str, low: float, high: float, *, open_low: bool = False) -> None:
        value = getattr(config, name)
        ok = isinstance(value, int | float) and math.isfinite(value)
        ok = ok and (value > low if open_low else value >= low) and value <= high
        if not ok:
            bound = "(" if open_low else "["
            errors.append(
                f"{name} must be a number in {bound}{low}, {high}], got {value!r}"
            )

    if config.preset not in PRESETS:
        errors.append(
            f"preset must be one of {', '.join(PRESETS)}, got {config.preset!r}"
        )
    positive_int("epochs")
    positive_int("batch_size")
    if not config.hidden or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 1
        for size in config.hidden
    ):
        errors.append(
            f"hidden must be one or more positive layer sizes such as 512,512, got "
            f"{','.join(map(str, config.hidden)) or 'nothing'}"
        )
    if config.activation not in names():
        errors.append(
            f"activation must be one of {', '.join(names())}, got {config.activation!r}"
        )
    if config.optimizer not in OPTIMIZERS:
        errors.append(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
            f"got {config.optimizer!r}"
        )
    number("learning_rate", 0.0, math.inf, open_low=True)
    number("weight_decay", 0.0, math.inf)
    number("dropout", 0.0, 0.95)
    number("input_dropout", 0.0, 0.95)
    number("warmup_epochs", 0.0, math.inf)
    number("momentum", 0.0, 1.0)
    number("grad_clip", 0.0, math.inf)
    number("max_norm", 0.0, math.inf)
    number("label_smoothing", 0.0, 1.0)
    if isinstance(config.seed, bool) or not isinstance(config.seed, int):
        errors.append(f"seed must be an integer, got {config.seed!r}")
    elif not 0 <= config.seed < 2**32:
        errors.append(f"seed must be in [0, 2**32), got {config.seed}")
    if config.warmup_epochs > config.epochs:
        errors.append(
            f"warmup_epochs ({config.warmup_epochs}) must not exceed epochs "
            f"({config.epochs}); pass a --warmup-epochs of at most {config.epochs}"
        )
    if not isinstance(config.workdir, str) or not config.workdir.strip():
        # An empty path would mean the current directory, which --overwrite clears.
        errors.append(
            f"workdir must name a directory, got {config.workdir!r}; pass "
            "--workdir runs/NAME or another path"
        )
    return errors
