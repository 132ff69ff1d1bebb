"""Train the MNIST MLP and show softmax at work on real test digits: the most confident
predictions, the most ambiguous ones, and 4s that could also be a 7 or a 9, each with
its probability bars."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _experiment_common import (
    build_parser,
    load_data,
    predict,
    prepare_out,
    save_figure,
    use_agg_backend,
    write_json,
)

import jax_acts as A
from train.config import PRESETS
from train.loop import fit

CLAIM = "Softmax turns the network's scores into a probability for each digit"
PER_GROUP = 6
# The article's example of an ambiguous digit: a 4 that also looks like these.
LOOKALIKES = {4: (7, 9)}


def describe(index: int, probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """One test digit as JSON: its index, label, prediction and probabilities."""
    return {
        "index": int(index),
        "label": int(labels[index]),
        "predicted": int(np.argmax(probabilities[index])),
        "max_probability": float(np.max(probabilities[index])),
        "probabilities": [float(p) for p in probabilities[index]],
    }


def select(
    logits: np.ndarray, probabilities: np.ndarray, labels: np.ndarray, count: int
) -> dict:
    """Indices of the most confident, the most ambiguous and the 4-like-7-or-9 digits.

    Confidence is the gap between the two largest logits, which keeps ranking where
    float32 probabilities have all rounded to 1; the confident digits are the most
    confident of their predicted class, one per class. Ambiguity is the smallest largest
    probability. A lookalike is a test 4 whose likeliest other class is 7 or 9,
    ranked by how close that class's probability comes to the 4's.
    """
    top_two = np.sort(logits, axis=-1)[:, -2:]
    by_confidence = np.argsort(top_two[:, 0] - top_two[:, 1])
    # One digit per class, so the confident row shows different digits.
    classes = np.argmax(logits[by_confidence], axis=-1)
    _, first_of_class = np.unique(classes, return_index=True)
    confident = by_confidence[np.sort(first_of_class)][:count]
    ambiguous = np.argsort(np.max(probabilities, axis=-1))[:count]

    lookalikes = []
    for digit, others in LOOKALIKES.items():
        rest = probabilities.copy()
        rest[:, digit] = -1.0
        rival = np.argmax(rest, axis=-1)
        candidates = np.flatnonzero((labels == digit) & np.isin(rival, others))
        closeness = np.abs(
            probabilities[candidates, digit]
            - probabilities[candidates, rival[candidates]]
        )
        lookalikes += candidates[np.argsort(closeness)][:count].tolist()
    return {
        "confident": confident.tolist(),
        "ambiguous": ambiguous.tolist(),
        "four_like_seven_or_nine": lookalikes[:count],
    }


def plot_grid(
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    groups: dict[str, list[int]],
    path: Path,
) -> None:
    """Per group a row of digits, each above its ten probability bars (the label's
    bar in green when predicted, orange otherwise)."""
    import matplotlib.pyplot as plt

    titles = {
        "confident": "most confident",
        "ambiguous": "most ambiguous",
        "four_like_seven_or_nine": "4 or 7/9?",
    }
    columns = max(len(indices) for indices in groups.values())
    figure = plt.figure(figsize=(1.5 * columns, 2.9 * len(groups)))
    outer = figure.add_gridspec(len(groups), 1, hspace=0.32)
    digits = np.arange(10)
    for row, (group, indices) in enumerate(groups.items()):
        cells = outer[row].subgridspec(
            2, columns, height_ratios=[1.0, 0.55], hspace=0.05, wspace=0.25
        )
        for column, index in enumerate(indices):
            image_axis = figure.add_subplot(cells[0, column])
            image_axis.imshow(images[index].squeeze(), cmap="gray_r")
            image_axis.set_xticks([])
            image_axis.set_yticks([])
            predicted = int(np.argmax(probabilities[index]))
            image_axis.set_title(
                f"#{index}: label {labels[index]}\n"
                f"p({predicted}) = {probabilities[index, predicted]:.3f}",
                fontsize=7,
            )
            if column == 0:
                image_axis.set_ylabel(titles.get(group, group), fontsize=9)
            bar_axis = figure.add_subplot(cells[1, column])
            colours = ["0.6"] * 10
            colours[labels[index]] = (
                "tab:green" if predicted == labels[index] else "tab:orange"
            )
            if predicted != labels[index]:
                colours[predicted] = "tab:red"
            bar_axis.bar(digits, probabilities[index], color=colours)
            bar_axis.set_ylim(0, 1)
            bar_axis.set_xticks(digits)
            bar_axis.tick_params(labelsize=6, length=2)
            bar_axis.set_yticks([0, 0.5, 1] if column == 0 else [])
    figure.suptitle(
        "softmax probabilities of test digits (green: label predicted; orange: label, "
        "red: wrong prediction)",
        fontsize=9,
    )
    save_figure(figure, path)


def summarize(result: dict, figures_link: str) -> str:
    """Markdown section for the report: the grid and the listed probabilities."""
    setup = result["setup"]
    lines = [
        "## Softmax on real digits",
        "",
        f"The trainer's `{setup['preset']}` preset (MLP {setup['hidden']}, relu, "
        f"{setup['epochs']} epochs on {setup['train_examples']} images) reaches "
        f"{result['test_accuracy']:.2%} on {setup['test_examples']} test digits. "
        f"`jax_acts.softmax` of its logits: {result['share_above_0_99']:.1%} of the "
        f"test digits get a top probability above 0.99; the mean top probability is "
        f"{result['mean_max_probability_correct']:.3f} on correctly classified "
        f"digits and {result['mean_max_probability_wrong']:.3f} on misclassified "
        "ones.",
        "",
        f"![softmax probabilities of test digits]({figures_link}/softmax_digits.png)",
        "",
        "| group | test index | label | predicted | top probabilities |",
        "| --- | --- | --- | --- | --- |",
    ]
    for group, digits in result["groups"].items():
        for digit in digits:
            probabilities = np.asarray(digit["probabilities"])
            top = np.argsort(probabilities)[::-1][:3]
            listed = ", ".join(f"{d}: {probabilities[d]:.3g}" for d in top)
            lines.append(
                f"| {group.replace('_', ' ')} | {digit['index']} | {digit['label']} "
                f"| {digit['predicted']} | {listed} |"
            )
    lines += ["", f"Verdict: {result['verdict']}"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser("softmax_digits", __doc__)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default: the quick preset's 4; 1 with --quick)",
    )
    parser.add_argument(
        "--per-group",
        type=int,
        default=PER_GROUP,
        help="digits shown per group (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.per_group < 1:
        parser.error(f"--per-group {args.per_group}: must be at least 1")
    out = prepare_out(args.out)
    use_agg_backend()

    data = load_data(args.data_dir, train_size=6_000 if args.quick else None)
    base = PRESETS["quick"]
    config = dataclasses.replace(
        base, seed=args.seed, epochs=args.epochs or (1 if args.quick else base.epochs)
    )
    config = dataclasses.replace(
        config, warmup_epochs=min(config.warmup_epochs, config.epochs)
    )
    model = fit(config, data).model
    logits = predict(model, data.test_images)
    probabilities = np.asarray(A.softmax(logits, axis=-1), dtype=np.float64)
    labels = data.test_labels
    predicted = np.argmax(probabilities, axis=-1)
    correct = predicted == labels
    top = probabilities.max(axis=-1)

    indices = select(logits, probabilities, labels, args.per_group)
    groups = {
        group: [describe(i, probabilities, labels) for i in chosen]
        for group, chosen in indices.items()
    }
    plot_grid(
        data.test_images, labels, probabilities, indices, out / "softmax_digits.png"
    )
    sums = probabilities.sum(axis=-1)
    result = {
        "claim": CLAIM,
        "setup": {
            "preset": base.preset,
            "hidden": list(config.hidden),
            "epochs": config.epochs,
            "train_examples": len(data.train_labels),
            "test_examples": len(labels),
            "seed": args.seed,
        },
        "test_accuracy": float(correct.mean()),
        "share_above_0_99": float(np.mean(top > 0.99)),
        "mean_max_probability_correct": float(top[correct].mean()),
        "mean_max_probability_wrong": (
            float(top[~correct].mean()) if (~correct).any() else None
        ),
        "largest_sum_error": float(np.max(np.abs(sums - 1.0))),
        "groups": groups,
        "figures": ["softmax_digits.png"],
    }
    result["verdict"] = (
        f"**Shown.** Every row of probabilities sums to 1 (largest error "
        f"{result['largest_sum_error']:.1e}); confident digits get almost all the "
        f"mass on one class, while the most ambiguous test digit's two likeliest "
        f"classes get {groups['ambiguous'][0]['max_probability']:.2f} and "
        f"{np.sort(groups['ambiguous'][0]['probabilities'])[-2]:.2f}."
    )
    write_json(out, "softmax_digits", result)
    for group, digits in groups.items():
        for digit in digits:
            print(
                f"{group:<24} #{digit['index']:<5} label {digit['label']} predicted "
                f"{digit['predicted']} p {digit['max_probability']:.4f}"
            )
    return result


if __name__ == "__main__":
    main()
