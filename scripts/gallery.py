"""Plot every elementwise activation in jax_acts with its derivative over [-6, 6] and
record each derivative's extremes (the logistic's 1/4, tanh's 1, ReLU's 1)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from _experiment_common import (
    build_parser,
    prepare_out,
    save_figure,
    use_agg_backend,
    write_json,
)

import jax_acts as A

X_RANGE = (-6.0, 6.0)
# An odd count puts a grid point exactly on 0, where the logistic's and tanh's
# derivatives peak.
GRID_POINTS = 12_001
QUICK_GRID_POINTS = 1_201
CLAIM = "The logistic's derivative never exceeds 1/4 (tanh's and ReLU's reach 1)"


def is_elementwise(function: Callable) -> bool:
    """Whether ``function`` maps each entry on its own (softmax-like normalisers and
    reductions do not), judged by comparing a vector against its entries one by one."""
    x = jnp.linspace(-2.0, 2.0, 5)
    try:
        whole = np.asarray(function(x))
        one_by_one = np.concatenate(
            [np.asarray(function(x[i : i + 1])) for i in range(5)]
        )
    except (TypeError, ValueError):
        return False
    return whole.shape == x.shape and np.allclose(whole, one_by_one, rtol=1e-6)


def measure(name: str, x: jnp.ndarray) -> dict:
    """Values and derivative of activation ``name`` on the grid ``x``, and extremes."""
    function = A.get(name)
    values = np.asarray(function(x), dtype=np.float64)
    slopes = np.asarray(A.derivative(function)(x), dtype=np.float64)
    top = int(np.argmax(slopes))
    bottom = int(np.argmin(slopes))
    return {
        "values": values,
        "derivative": slopes,
        "derivative_max": float(slopes[top]),
        "derivative_max_at": float(x[top]),
        "derivative_min": float(slopes[bottom]),
        "derivative_min_at": float(x[bottom]),
        "value_min": float(values.min()),
        "value_max": float(values.max()),
    }


def plot_gallery(
    x: np.ndarray, curves: dict[str, dict], aliases: dict[str, str], path: Path
) -> None:
    """Small multiples: one panel per activation, the function and its derivative."""
    import matplotlib.pyplot as plt

    names = list(curves)
    columns = 6
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(2.1 * columns, 1.75 * rows), sharex=True, squeeze=False
    )
    for axis, name in zip(axes.flat, names, strict=False):
        axis.axhline(0.0, color="0.8", linewidth=0.6)
        axis.axvline(0.0, color="0.8", linewidth=0.6)
        axis.plot(x, curves[name]["values"], color="tab:blue", linewidth=1.3)
        axis.plot(x, curves[name]["derivative"], color="tab:orange", linewidth=1.1)
        label = " = ".join([name, *(a for a, n in aliases.items() if n == name)])
        axis.set_title(
            f"{label}  (max f′ {curves[name]['derivative_max']:.3g})", fontsize=8
        )
        # Rectifiers grow to 6; clipping keeps the sigmoid-shaped panels readable.
        axis.set_ylim(-1.6, 2.6)
        axis.tick_params(labelsize=6)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.legend(
        handles=[
            plt.Line2D([], [], color="tab:blue"),
            plt.Line2D([], [], color="tab:orange"),
        ],
        labels=["f(x)", "f′(x) from jax_acts.derivative"],
        loc="upper center",
        ncol=2,
        fontsize=9,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    save_figure(figure, path)


def verdict(table: dict[str, dict]) -> str:
    """The logistic's, tanh's and ReLU's derivative maxima against 1/4, 1 and 1."""
    expected = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
    measured = {name: table[name]["derivative_max"] for name in expected}
    holds = all(abs(measured[n] - expected[n]) <= 1e-6 for n in expected)
    listed = ", ".join(
        f"{name} {value:.6f} at x = {table[name]['derivative_max_at']:g}"
        for name, value in measured.items()
    )
    return f"**{'Confirmed' if holds else 'Refuted'}.** Largest derivative: {listed}."


def summarize(result: dict, figures_link: str) -> str:
    """Markdown section for the report: the figure and the derivative extremes."""
    rows = [
        f"| `{name}` | {row['derivative_max']:.6g} | {row['derivative_max_at']:.3g} "
        f"| {row['derivative_min']:.6g} | {row['derivative_min_at']:.3g} |"
        for name, row in result["derivative_extremes"].items()
    ]
    low, high = result["x_range"]
    return "\n".join(
        [
            "## Gallery: every activation and its derivative",
            "",
            f"![activations]({figures_link}/gallery.png)",
            "",
            f"Derivatives from `jax_acts.derivative` on {result['grid_points']} "
            f"points of [{low:g}, {high:g}] (float32). The logistic's derivative peaks "
            "at 1/4, tanh's at 1 and ReLU's at 1:",
            "",
            "| activation | max f′ | at x | min f′ | at x |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser("gallery", __doc__)
    args = parser.parse_args(argv)
    out = prepare_out(args.out)
    use_agg_backend()

    points = QUICK_GRID_POINTS if args.quick else GRID_POINTS
    # Built in float64 so that the middle point is exactly 0.
    x = jnp.asarray(np.linspace(*X_RANGE, points), dtype=jnp.float32)
    names, aliases, skipped = [], {}, []
    for name in A.names():
        function = A.get(name)
        if not is_elementwise(function):
            skipped.append(name)
            continue
        # Aliases (swish for silu) are one function: plot it once.
        first = next((n for n in names if A.get(n) is function), None)
        if first is None:
            names.append(name)
        else:
            aliases[name] = first
    curves = {name: measure(name, x) for name in names}

    figure_path = out / "gallery.png"
    plot_gallery(np.asarray(x), curves, aliases, figure_path)
    table = {
        name: {
            key: value
            for key, value in curves[name].items()
            if key not in ("values", "derivative")
        }
        for name in names
    }
    result = {
        "x_range": list(X_RANGE),
        "grid_points": points,
        "derivative_extremes": table,
        "aliases": aliases,
        "not_elementwise": skipped,
        "figures": [figure_path.name],
    }
    result["claim"] = CLAIM
    result["verdict"] = verdict(table)
    write_json(out, "gallery", result)

    print(f"{'activation':<22}{'max f′':>10}{'at x':>8}{'min f′':>10}{'at x':>8}")
    for name, row in table.items():
        print(
            f"{name:<22}{row['derivative_max']:>10.5f}{row['derivative_max_at']:>8.2f}"
            f"{row['derivative_min']:>10.5f}{row['derivative_min_at']:>8.2f}"
        )
    print(f"wrote {figure_path} and {out / 'gallery.json'}")
    return result


if __name__ == "__main__":
    main()
