"""Train the same MLP with relu, tanh, sigmoid, gelu and silu through the trainer and
measure the epochs and seconds each needs to reach 97% test accuracy, to test "ReLUs
train much faster"."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _experiment_common import (
    build_parser,
    load_data,
    prepare_out,
    save_figure,
    use_agg_backend,
    write_json,
)

import jax_acts as A
from train.config import PRESETS, Config
from train.loop import fit

CLAIM = "ReLUs train much faster than sigmoid-shaped units"
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "silu")
TARGET = 0.97
SATURATING = ("sigmoid", "tanh")
# "Much faster" read as needing at most half the epochs.
MUCH_FASTER = 2.0
# SGD needs a far larger step than AdamW; this rate trains every activation here.
SGD_LEARNING_RATE = 0.05


def make_config(base: Config, activation: str, optimizer: str, epochs: int) -> Config:
    """The trainer's configuration for one run: only the activation (and the
    optimizer with its rate) differ between runs."""
    changes = {"activation": activation, "epochs": epochs, "optimizer": optimizer}
    if optimizer == "sgd":
        changes["learning_rate"] = SGD_LEARNING_RATE
    return dataclasses.replace(base, **changes)


def time_to_target(history: list[dict], compile_seconds: float, target: float) -> dict:
    """First epoch whose test accuracy reaches ``target``, and the time until then.

    ``train_seconds`` adds the epochs' training time only; ``wall_seconds`` also
    counts compilation, which a user waits for as well (evaluation is excluded).
    """
    accuracies = [record["test_accuracy"] for record in history]
    epoch_seconds = [record["epoch_seconds"] for record in history]
    reached = next((i for i, a in enumerate(accuracies) if a >= target), None)
    return {
        "test_accuracy": accuracies,
        "train_loss": [record["train_loss"] for record in history],
        "epoch_seconds": epoch_seconds,
        "compile_seconds": compile_seconds,
        "epochs_to_target": None if reached is None else reached + 1,
        "train_seconds_to_target": (
            None if reached is None else float(np.sum(epoch_seconds[: reached + 1]))
        ),
        "wall_seconds_to_target": (
            None
            if reached is None
            else compile_seconds + float(np.sum(epoch_seconds[: reached + 1]))
        ),
        "best_test_accuracy": max(accuracies),
    }


def plot_curves(runs: dict, target: float, path: Path) -> None:
    """Test accuracy per epoch (top) and against training seconds (bottom)."""
    import matplotlib.pyplot as plt

    optimizers = list(runs)
    figure, axes = plt.subplots(
        2, len(optimizers), figsize=(4.6 * len(optimizers), 6.0), squeeze=False
    )
    for column, optimizer in enumerate(optimizers):
        for activation, run in runs[optimizer].items():
            accuracy = np.asarray(run["test_accuracy"])
            epochs = np.arange(1, len(accuracy) + 1)
            seconds = np.cumsum(run["epoch_seconds"])
            (line,) = axes[0, column].plot(epochs, accuracy, "o-", label=activation)
            axes[1, column].plot(seconds, accuracy, "o-", color=line.get_color())
        top, bottom = axes[:, column]
        top.set_title(f"{optimizer} (the trainer's schedule)", fontsize=10)
        top.set_xlabel("epoch")
        bottom.set_xlabel("training seconds (compilation excluded)")
        for axis in (top, bottom):
            axis.axhline(target, color="k", linestyle=":", linewidth=1)
            lowest = min(min(r["test_accuracy"]) for r in runs[optimizer].values())
            axis.set_ylim(max(lowest - 0.005, 0.85), 1.0)
            axis.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy")
    axes[1, 0].set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    save_figure(figure, path)


def verdict(runs: dict, target: float) -> str:
    """Whether relu reaches the target in fewer epochs than sigmoid and tanh, and by
    how much, with every activation's epochs."""
    parts, firsts, margins = [], [], []
    for optimizer, by_activation in runs.items():
        limit = len(next(iter(by_activation.values()))["test_accuracy"])
        epochs = {name: run["epochs_to_target"] for name, run in by_activation.items()}
        # A run that never reaches the target counts as infinitely slow.
        slowness = {name: e or math.inf for name, e in epochs.items()}
        rivals = [slowness[name] for name in SATURATING if name in slowness]
        first = epochs.get("relu") is not None and all(
            slowness["relu"] < rival for rival in rivals
        )
        firsts.append(first)
        if first:
            margins.append(min(rivals) / slowness["relu"])
        listed = ", ".join(
            f"{name} {e if e is not None else f'not within {limit}'}"
            for name, e in epochs.items()
        )
        parts.append(f"{optimizer}: epochs to {target:.0%}: {listed}")
    reached_any = any(
        run["epochs_to_target"] is not None
        for by_activation in runs.values()
        for run in by_activation.values()
    )
    if not reached_any:
        label = "**Undecided: no activation reached the target; train longer.**"
    elif all(firsts) and min(margins) >= MUCH_FASTER:
        label = "**Confirmed.**"
    elif all(firsts):
        label = (
            f"**Partly confirmed: relu gets there first, but only {min(margins):.1f}x "
            "sooner in the closest case.**"
        )
    elif any(firsts):
        label = "**Depends on the optimizer.**"
    else:
        label = "**Not confirmed here.**"
    text = f"{label} " + "; ".join(parts) + "."
    peers = [
        name
        for name in ("gelu", "silu")
        if all(
            by_activation.get(name, {}).get("epochs_to_target") is not None
            and by_activation["relu"]["epochs_to_target"] is not None
            and by_activation[name]["epochs_to_target"]
            <= by_activation["relu"]["epochs_to_target"]
            for by_activation in runs.values()
        )
    ]
    if peers:
        text += f" The smooth rectifiers {' and '.join(peers)} get there as early."
    return text


def summarize(result: dict, figures_link: str) -> str:
    """Markdown section for the report: the curves and the time-to-target table."""
    setup = result["setup"]
    rows = []
    for optimizer, by_activation in result["runs"].items():
        for name, run in by_activation.items():
            if run["epochs_to_target"] is None:
                reached = "not reached | – | –"
            else:
                reached = (
                    f"{run['epochs_to_target']} | {run['train_seconds_to_target']:.1f} "
                    f"| {run['wall_seconds_to_target']:.1f}"
                )
            rows.append(
                f"| {optimizer} | {name} | {reached} "
                f"| {np.median(run['epoch_seconds']):.2f} "
                f"| {run['best_test_accuracy']:.4f} |"
            )
    return "\n".join(
        [
            "## Training speed: do ReLUs train faster?",
            "",
            f"The trainer (`train.loop.fit`) with its `{setup['preset']}` preset: MLP "
            f"{setup['hidden']}, batch {setup['batch_size']}, warm-up and cosine "
            f"schedule over {setup['epochs']} epochs on {setup['train_examples']} "
            f"images, tested on {setup['test_examples']}; AdamW at "
            f"{setup['learning_rates']['adamw']:g}, SGD with Nesterov momentum at "
            f"{setup['learning_rates']['sgd']:g}. Only the activation changes between "
            f"runs. Target: {result['target']:.0%} test accuracy.",
            "",
            f"![test accuracy per epoch]({figures_link}/training_speed.png)",
            "",
            "| optimizer | activation | epochs to target | training s | "
            "with compilation s | s per epoch (median) | best test accuracy |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Verdict: {result['verdict']}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser("training_speed", __doc__)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default: 6; 2 with --quick)",
    )
    parser.add_argument(
        "--optimizers",
        default=None,
        help="comma-separated, from adamw and sgd (default: both; adamw with --quick)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=TARGET,
        help="test accuracy to reach (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    optimizers = (args.optimizers or ("adamw" if args.quick else "adamw,sgd")).split(
        ","
    )
    if not set(optimizers) <= {"adamw", "sgd"}:
        parser.error(f"--optimizers {args.optimizers!r}: choose from adamw, sgd")
    missing = [name for name in ACTIVATIONS if name not in A.names()]
    if missing:
        parser.error(f"jax_acts lacks {missing}; this experiment needs {ACTIVATIONS}")
    epochs = args.epochs or (2 if args.quick else 6)
    if epochs < 1:
        parser.error(f"--epochs {epochs}: must be at least 1")
    out = prepare_out(args.out)
    use_agg_backend()

    data = load_data(
        args.data_dir,
        train_size=6_000 if args.quick else None,
        test_size=2_000 if args.quick else None,
    )
    base = dataclasses.replace(PRESETS["quick"], seed=args.seed)
    runs = {}
    for optimizer in optimizers:
        runs[optimizer] = {}
        for activation in ACTIVATIONS:
            config = make_config(base, activation, optimizer, epochs)
            fitted = fit(config, data)
            runs[optimizer][activation] = time_to_target(
                fitted.history, fitted.compile_seconds, args.target
            )
            run = runs[optimizer][activation]
            reached = "not reached"
            if run["epochs_to_target"] is not None:
                reached = (
                    f"{run['epochs_to_target']} epochs, "
                    f"{run['train_seconds_to_target']:.1f} s"
                )
            print(
                f"{optimizer:<6}{activation:<9} best {run['best_test_accuracy']:.4f}  "
                f"{args.target:.0%}: {reached}",
                flush=True,
            )

    plot_curves(runs, args.target, out / "training_speed.png")
    result = {
        "claim": CLAIM,
        "target": args.target,
        "setup": {
            "preset": base.preset,
            "hidden": list(base.hidden),
            "batch_size": base.batch_size,
            "epochs": epochs,
            "learning_rates": {"adamw": base.learning_rate, "sgd": SGD_LEARNING_RATE},
            "train_examples": len(data.train_labels),
            "test_examples": len(data.test_labels),
            "seed": args.seed,
        },
        "runs": runs,
        "verdict": verdict(runs, args.target),
        "figures": ["training_speed.png"],
    }
    write_json(out, "training_speed", result)
    print(result["verdict"])
    return result


if __name__ == "__main__":
    main()
