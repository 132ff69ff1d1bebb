"""Sweep the learning rate over several orders of magnitude and count the hidden units
that never activate on the whole training set afterwards, for relu, leaky_relu and elu,
to test "with a learning rate that is too high, as much as 40% of the network can be
dead"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
import optax
from _experiment_common import (
    build_parser,
    evaluate_accuracy,
    load_data,
    prepare_out,
    save_figure,
    train_mlp,
    use_agg_backend,
    write_json,
)
from flax import nnx

import jax_acts as A
from train.data import MNIST
from train.model import MLP

CLAIM = "A learning rate that is too high can leave as much as 40% of the network dead"
CLAIMED_FRACTION = 0.40
DEAD_DEFINITION = (
    "a hidden unit is dead when its pre-activation is <= 0 for every training "
    "example, so it never enters the rectifier's identity (positive) branch. For "
    "relu that means its output and its gradient are 0 on every example; leaky_relu "
    "and elu units in that state still pass a small gradient (slope 0.01, and "
    "alpha·e^z) and can recover. All three keep the sign of z, so the test is "
    "'output > 0 on no example'."
)
ACTIVATIONS = ("relu", "leaky_relu", "elu")
# Constant rates; plain SGD needs rates about 100x larger than Adam's to move as far.
FULL_RATES = {
    "sgd": (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0),
    "adam": (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
}
QUICK_RATES = {"sgd": (1e-2, 3.0), "adam": (1e-3, 3e-2)}


def alive_units(model: MLP, images: np.ndarray, *, batch_size: int = 10_000) -> list:
    """Per hidden layer, a bool ``[units]`` mask: output > 0 on at least one image."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def active_in_batch(state, batch):
        layers = nnx.merge(graphdef, state).hidden_activations(batch)
        return [(h > 0).any(axis=0) for h in layers]

    alive = None
    for start in range(0, len(images), batch_size):
        batch_alive = active_in_batch(state, images[start : start + batch_size])
        batch_alive = [np.asarray(mask) for mask in batch_alive]
        alive = (
            batch_alive
            if alive is None
            else [seen | now for seen, now in zip(alive, batch_alive, strict=True)]
        )
    return alive


def run_one(
    activation: str,
    optimizer_name: str,
    learning_rate: float,
    data: MNIST,
    *,
    hidden: tuple[int, ...],
    steps: int,
    batch_size: int,
    seed: int,
) -> dict:
    """Train a fresh MLP at one constant rate and count its dead units."""
    model = MLP(hidden=hidden, activation=activation, rngs=nnx.Rngs(seed))
    optimizer = {"sgd": optax.sgd, "adam": optax.adam}[optimizer_name](learning_rate)
    losses = train_mlp(
        model,
        data.train_images,
        data.train_labels,
        optimizer=optimizer,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
    )
    params_finite = all(
        bool(np.isfinite(np.asarray(leaf)).all())
        for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))
    )
    run = {
        "learning_rate": learning_rate,
        "final_loss": float(np.mean(losses[-max(1, steps // 20) :])),
        "diverged": not (params_finite and bool(np.isfinite(losses).all())),
    }
    if run["diverged"]:
        # NaN weights make every comparison false: a dead count would be meaningless.
        run.update(dead_fraction=None, dead_per_layer=None, test_accuracy=None)
        return run
    alive = alive_units(model, data.train_images)
    dead = [float(1.0 - mask.mean()) for mask in alive]
    units = np.array([mask.size for mask in alive])
    run.update(
        dead_fraction=float(np.sum(np.array(dead) * units) / units.sum()),
        dead_per_layer=dead,
        test_accuracy=evaluate_accuracy(model, data.test_images, data.test_labels),
    )
    return run


def percent(fraction: float) -> str:
    """A fraction as a percentage, with a decimal below 10% where it matters."""
    return f"{fraction:.1%}" if 0 < fraction < 0.1 else f"{fraction:.0%}"


def worst(runs: list[dict]) -> dict | None:
    """The run with the highest dead fraction among those that did not diverge."""
    finite = [run for run in runs if not run["diverged"]]
    return max(finite, key=lambda run: run["dead_fraction"], default=None)


def first_past(runs: list[dict], fraction: float) -> dict | None:
    """The lowest learning rate whose network has at least ``fraction`` dead."""
    past = [
        run for run in runs if not run["diverged"] and run["dead_fraction"] >= fraction
    ]
    return min(past, key=lambda run: run["learning_rate"], default=None)


def plot_sweep(sweeps: dict, path: Path) -> None:
    """Dead fraction (top) and test accuracy (bottom) against the learning rate."""
    import matplotlib.pyplot as plt

    optimizers = list(next(iter(sweeps.values())))
    figure, axes = plt.subplots(
        2,
        len(optimizers),
        figsize=(4.4 * len(optimizers), 5.2),
        sharex="col",
        squeeze=False,
    )
    # Curves often coincide: hollow markers of different shapes keep each visible.
    markers = dict(zip(sweeps, ("o", "s", "^", "D", "v"), strict=False))
    for column, optimizer_name in enumerate(optimizers):
        for offset, (activation, by_optimizer) in enumerate(sweeps.items()):
            runs = by_optimizer[optimizer_name]
            kept = [run for run in runs if not run["diverged"]]
            rates = [run["learning_rate"] for run in kept]
            style = {"marker": markers[activation], "fillstyle": "none"}
            (line,) = axes[0, column].semilogx(
                rates, [run["dead_fraction"] for run in kept], label=activation, **style
            )
            axes[1, column].semilogx(
                rates,
                [run["test_accuracy"] for run in kept],
                color=line.get_color(),
                **style,
            )
            diverged = [run["learning_rate"] for run in runs if run["diverged"]]
            axes[1, column].semilogx(
                diverged,
                [0.04 * offset] * len(diverged),
                "x",
                color=line.get_color(),
            )
        axes[0, column].axhline(CLAIMED_FRACTION, color="k", linestyle=":", label="40%")
        axes[0, column].set_title(f"{optimizer_name}, constant rate", fontsize=10)
        axes[0, column].set_ylim(-0.03, 1.03)
        axes[1, column].set_ylim(-0.03, 1.03)
        axes[1, column].set_xlabel("learning rate")
        for axis in axes[:, column]:
            axis.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("dead fraction of hidden units")
    axes[1, 0].set_ylabel("test accuracy (x: diverged)")
    axes[0, -1].legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def verdict(sweeps: dict) -> tuple[str, dict]:
    """The verdict sentence and, per activation and optimizer, the cases behind it."""
    cases = {
        activation: {
            optimizer_name: {
                "worst": worst(runs),
                "first_past_claim": first_past(runs, CLAIMED_FRACTION),
                "diverged_from": min(
                    (run["learning_rate"] for run in runs if run["diverged"]),
                    default=None,
                ),
            }
            for optimizer_name, runs in by_optimizer.items()
        }
        for activation, by_optimizer in sweeps.items()
    }

    def describe(optimizer_name: str, case: dict) -> str:
        run = case["worst"]
        if run is None:
            return f"{optimizer_name}: every rate diverged"
        if run["dead_fraction"] == 0:
            text = f"{optimizer_name}: no dead unit at any rate"
            if case["diverged_from"] is not None:
                text += f" below {case['diverged_from']:g}, where it diverged"
            return text
        text = (
            f"{optimizer_name}: up to {percent(run['dead_fraction'])} dead at rate "
            f"{run['learning_rate']:g} (test accuracy {run['test_accuracy']:.1%})"
        )
        first = case["first_past_claim"]
        if first is not None and first is not run:
            text += (
                f", already {percent(first['dead_fraction'])} at "
                f"{first['learning_rate']:g}"
                f" (accuracy {first['test_accuracy']:.1%})"
            )
        if case["diverged_from"] is not None:
            text += f", diverged from {case['diverged_from']:g}"
        return text

    sentences = [
        f"{activation}: "
        + "; ".join(describe(name, case) for name, case in by_optimizer.items())
        for activation, by_optimizer in cases.items()
    ]
    relu = cases.get("relu", {})
    reached = [name for name, case in relu.items() if case["first_past_claim"]]
    if not relu:
        label = "**Not measured.**"
    elif len(reached) == len(relu):
        label = "**Confirmed.**"
    elif reached:
        label = (
            f"**Depends on the optimizer: confirmed with {', '.join(reached)} only.**"
        )
    else:
        label = "**Refuted at these rates.**"
    return f"{label} " + ". ".join(sentences) + ".", cases


def summarize(result: dict, figures_link: str) -> str:
    """Markdown section for the report: the sweep figure and one table per optimizer,
    each cell the dead fraction with the test accuracy in brackets."""
    setup = result["setup"]
    tables = []
    for optimizer_name in next(iter(result["sweeps"].values())):
        rates = [
            run["learning_rate"]
            for run in next(iter(result["sweeps"].values()))[optimizer_name]
        ]
        tables += [
            f"{optimizer_name}, constant rate:",
            "",
            "| activation | " + " | ".join(f"{rate:g}" for rate in rates) + " |",
            "| --- |" + " --- |" * len(rates),
        ]
        for activation, by_optimizer in result["sweeps"].items():
            cells = [
                "diverged"
                if run["diverged"]
                else f"{percent(run['dead_fraction'])} ({run['test_accuracy']:.1%})"
                for run in by_optimizer[optimizer_name]
            ]
            tables.append(f"| {activation} | " + " | ".join(cells) + " |")
        tables.append("")
    epochs = f"{setup['epochs']:.2g}"
    return "\n".join(
        [
            "## Dying ReLUs: how much of the network dies at high learning rates?",
            "",
            f"MLP {setup['hidden']} (the trainer's model and initialisation), "
            f"{setup['steps']} steps of batch {setup['batch_size']} "
            f"({epochs} epoch{'' if epochs == '1' else 's'} of "
            f"{setup['train_examples']} images) at each constant learning rate, "
            "one fresh network per rate. Dead units are counted over all "
            f"{setup['train_examples']} training images: {result['dead_definition']}",
            "",
            f"![dead fraction against learning rate]({figures_link}/dying_relu.png)",
            "",
            "Dead fraction of all hidden units (test accuracy):",
            "",
            *tables,
            f"Verdict: {result['verdict']}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser("dying_relu", __doc__)
    parser.add_argument(
        "--hidden", default="256,256", help="hidden layer sizes (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=float,
        default=None,
        help="epochs per run (default: 1; 0.5 with --quick)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, help="minibatch (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        hidden = tuple(int(size) for size in args.hidden.split(","))
    except ValueError:
        parser.error(f"--hidden {args.hidden!r}: expected sizes such as 256,256")
    if not hidden or min(hidden) < 1:
        parser.error(f"--hidden {args.hidden!r}: sizes must be positive")
    missing = [name for name in ACTIVATIONS if name not in A.names()]
    if missing:
        parser.error(f"jax_acts lacks {missing}; this experiment needs {ACTIVATIONS}")
    epochs = args.epochs or (0.5 if args.quick else 1.0)
    out = prepare_out(args.out)
    use_agg_backend()

    data = load_data(
        args.data_dir,
        train_size=4_000 if args.quick else None,
        test_size=2_000 if args.quick else None,
    )
    steps = max(1, round(epochs * len(data.train_labels) / args.batch_size))
    rates = QUICK_RATES if args.quick else FULL_RATES
    sweeps = {}
    for activation in ACTIVATIONS:
        sweeps[activation] = {}
        for optimizer_name, optimizer_rates in rates.items():
            sweeps[activation][optimizer_name] = []
            for learning_rate in optimizer_rates:
                run = run_one(
                    activation,
                    optimizer_name,
                    learning_rate,
                    data,
                    hidden=hidden,
                    steps=steps,
                    batch_size=args.batch_size,
                    seed=args.seed,
                )
                sweeps[activation][optimizer_name].append(run)
                dead = (
                    "diverged"
                    if run["diverged"]
                    else f"{run['dead_fraction']:6.1%} dead"
                )
                print(
                    f"{activation:<11}{optimizer_name:<5} rate {learning_rate:<7g} "
                    f"{dead}",
                    flush=True,
                )

    plot_sweep(sweeps, out / "dying_relu.png")
    text, cases = verdict(sweeps)
    result = {
        "claim": CLAIM,
        "dead_definition": DEAD_DEFINITION,
        "setup": {
            "hidden": list(hidden),
            "steps": steps,
            "epochs": steps * args.batch_size / len(data.train_labels),
            "batch_size": args.batch_size,
            "train_examples": len(data.train_labels),
            "seed": args.seed,
        },
        "sweeps": sweeps,
        "cases": cases,
        "verdict": text,
        "figures": ["dying_relu.png"],
    }
    write_json(out, "dying_relu", result)
    print(text)
    return result


if __name__ == "__main__":
    main()
