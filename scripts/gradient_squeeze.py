"""Measure how much each hidden layer of a deep MLP shrinks the back-propagated error,
at initialisation and after training, to test "each sigmoid layer shrinks the error by
at least 4x" against the logistic derivative's bound of 1/4."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
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
from train.config import Config
from train.data import MNIST
from train.model import MLP, cross_entropy_loss, normalize

SIGMOID_BOUND = 0.25
# Plain SGD (with the trainer's momentum) moves this deep a network at about the
# pace of AdamW at its default rate.
SGD_LEARNING_RATE = 0.1
CLAIM = "Each sigmoid layer shrinks the back-propagated error by at least 4x"


@nnx.jit
def _norms(model: MLP, images: jax.Array, labels: jax.Array) -> dict:
    """Per-layer norms of ``dL/dz``, ``dL/dh`` and ``dL/dW``, and both forward
    passes' logits, in one compiled call."""
    x = normalize(images)
    zeros = [
        jnp.zeros((x.shape[0], layer.out_features), x.dtype)
        for layer in model.hidden_layers
    ]

    def logits_with_probes(pre_probes, post_probes):
        h = x
        for layer, pre, post in zip(
            model.hidden_layers, pre_probes, post_probes, strict=True
        ):
            h = model.activation(layer(h) + pre) + post
        return model.output(h)

    deltas, outputs = jax.grad(
        lambda pre, post: cross_entropy_loss(logits_with_probes(pre, post), labels),
        argnums=(0, 1),
    )(zeros, zeros)
    kernel_grads = nnx.grad(lambda m: cross_entropy_loss(m(images), labels))(model)
    return {
        "deltas": jnp.stack([jnp.linalg.norm(d) for d in deltas]),
        "outputs": jnp.stack([jnp.linalg.norm(g) for g in outputs]),
        "kernels": jnp.stack(
            [
                jnp.linalg.norm(kernel_grads.hidden_layers[i].kernel[...])
                for i in range(len(model.hidden_layers))
            ]
        ),
        "probed_logits": logits_with_probes(zeros, zeros),
        "logits": model(images),
    }


def backprop_norms(model: MLP, images: np.ndarray, labels: np.ndarray) -> dict:
    """Norms of the error at every hidden layer for one batch.

    The error at layer ``l`` is ``delta_l = dL/dz_l`` at its pre-activations ``z_l``.
    Going one layer down, ``delta_l = f'(z_l) * (W_{l+1}^T delta_{l+1})``, so each
    layer's factor ``|delta_l| / |delta_{l+1}|`` splits into the weight factor
    ``|W^T delta_{l+1}| / |delta_{l+1}|`` times the activation factor
    ``|f'(z_l) * g_l| / |g_l|``, which never exceeds ``max f'`` (1/4 for the
    logistic). Zero-valued probes added to ``z_l`` and to the outputs ``h_l`` give
    ``delta_l`` and ``g_l = dL/dh_l`` by ordinary autodiff.
    """
    norms = _norms(model, jnp.asarray(images), jnp.asarray(labels))
    # The probed forward pass must be the model's own, or the norms measure
    # something else.
    if not np.allclose(norms["probed_logits"], norms["logits"], rtol=1e-4, atol=1e-5):
        raise RuntimeError(
            "the layer-by-layer forward pass no longer matches MLP.__call__; "
            "update backprop_norms to follow the model"
        )
    delta_norms = np.asarray(norms["deltas"], dtype=np.float64)
    output_norms = np.asarray(norms["outputs"], dtype=np.float64)
    total = delta_norms[:-1] / delta_norms[1:]
    activation = delta_norms[:-1] / output_norms[:-1]
    return {
        "error_norms": delta_norms,
        "weight_gradient_norms": np.asarray(norms["kernels"], dtype=np.float64),
        "layer_factors": total,
        "activation_factors": activation,
        "weight_factors": total / activation,
        "mean_layer_factor": float(np.exp(np.mean(np.log(total)))),
    }


def measure(
    activation: str,
    data: MNIST,
    *,
    depth: int,
    width: int,
    steps: int,
    batch_size: int,
    probe_size: int,
    optimizer_name: str,
    seed: int,
) -> dict:
    """Error norms of one fresh ``depth``-layer MLP at init and after ``steps``."""
    model = MLP(hidden=(width,) * depth, activation=activation, rngs=nnx.Rngs(seed))
    probe_images = data.test_images[:probe_size]
    probe_labels = data.test_labels[:probe_size]
    at_init = backprop_norms(model, probe_images, probe_labels)

    defaults = Config()
    if optimizer_name == "adamw":
        optimizer = optax.adamw(
            defaults.learning_rate, weight_decay=defaults.weight_decay
        )
    else:
        optimizer = optax.sgd(SGD_LEARNING_RATE, momentum=defaults.momentum)
    losses = train_mlp(
        model,
        data.train_images,
        data.train_labels,
        optimizer=optimizer,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
    )
    trained = backprop_norms(model, probe_images, probe_labels)
    trained["final_loss"] = float(np.mean(losses[-max(1, steps // 20) :]))
    trained["test_accuracy"] = evaluate_accuracy(
        model, data.test_images, data.test_labels
    )
    return {"init": at_init, "trained": trained}


def plot_norms(results: dict, steps: int, path: Path) -> None:
    """Error norm against layer (input side on the left), at init and trained."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for axis, stage, title in zip(
        axes,
        ("init", "trained"),
        ("at initialisation", f"after {steps} steps"),
        strict=True,
    ):
        for name, result in results.items():
            norms = result[stage]["error_norms"]
            layers = np.arange(1, len(norms) + 1)
            axis.semilogy(layers, norms, marker="o", markersize=3, label=name)
        sigmoid_top = results.get("sigmoid", {}).get(stage, {}).get("error_norms")
        if sigmoid_top is not None:
            # Slope of a layer factor of exactly 1/4, anchored at the top layer.
            depth = len(sigmoid_top)
            bound = sigmoid_top[-1] * SIGMOID_BOUND ** (depth - np.arange(1, depth + 1))
            axis.semilogy(
                np.arange(1, depth + 1),
                bound,
                "k:",
                linewidth=1,
                label="1/4 per layer",
            )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("hidden layer (1 = next to the input)")
        axis.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("|dL/dz| at the layer")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def plot_sigmoid_factors(result: dict, steps: int, path: Path) -> None:
    """The sigmoid network's factor per layer, split into activation and weights."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for axis, stage, title in zip(
        axes,
        ("init", "trained"),
        ("at initialisation", f"after {steps} steps"),
        strict=True,
    ):
        factors = result[stage]
        layers = np.arange(1, len(factors["layer_factors"]) + 1)
        axis.semilogy(layers, factors["layer_factors"], "o-", label="layer factor")
        axis.semilogy(layers, factors["activation_factors"], "s--", label="σ′ part")
        axis.semilogy(layers, factors["weight_factors"], "^--", label="weight part")
        axis.axhline(SIGMOID_BOUND, color="k", linestyle=":", label="1/4")
        axis.set_title(f"sigmoid, {title}", fontsize=10)
        axis.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("layer l  (factor |δ_l| / |δ_l+1|)")
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("factor per layer")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(figure, path)


def verdict(results: dict, steps: int) -> str:
    """One sentence from the sigmoid network's measured factors."""
    sigmoid = results["sigmoid"]
    init, trained = sigmoid["init"], sigmoid["trained"]
    within_init = int(np.sum(np.asarray(init["layer_factors"]) <= SIGMOID_BOUND))
    within_trained = int(np.sum(np.asarray(trained["layer_factors"]) <= SIGMOID_BOUND))
    count = len(init["layer_factors"])
    largest_activation_factor = max(
        np.max(init["activation_factors"]), np.max(trained["activation_factors"])
    )
    text = (
        f"At initialisation {within_init} of {count} sigmoid layers shrink the error "
        f"by 4x or more (geometric mean {1 / init['mean_layer_factor']:.2f}x per "
        f"layer); after {steps} training steps {within_trained} of {count} do "
        f"(mean {1 / trained['mean_layer_factor']:.2f}x). The σ′ part never exceeds "
        f"1/4 (largest {largest_activation_factor:.3f}), but the weights multiply "
        f"the error by up to {np.max(trained['weight_factors']):.1f}x once trained"
    )
    if within_init == count and within_trained == count:
        return "**Confirmed.** " + text + "."
    if within_init == count:
        return "**Depends on the weights: true at initialisation only.** " + text + "."
    return "**Refuted.** " + text + "."


def summarize(result: dict, figures_link: str) -> str:
    """Markdown section for the report: both figures and the per-layer factors."""
    setup = result["setup"]
    rows = []
    for name, stages in result["activations"].items():
        init, trained = stages["init"], stages["trained"]
        rows.append(
            f"| {name} | {1 / init['mean_layer_factor']:.2f}x "
            f"| {init['error_norms'][0] / init['error_norms'][-1]:.3g} "
            f"| {1 / trained['mean_layer_factor']:.2f}x "
            f"| {trained['error_norms'][0] / trained['error_norms'][-1]:.3g} "
            f"| {trained['test_accuracy']:.4f} |"
        )
    sigmoid = result["activations"].get("sigmoid")
    factor_rows = []
    if sigmoid is not None:
        for stage in ("init", "trained"):
            values = sigmoid[stage]
            factor_rows.append(
                f"| {stage} | "
                + " ".join(f"{f:.3f}" for f in values["layer_factors"])
                + f" | {np.max(values['activation_factors']):.3f} "
                f"| {np.min(values['weight_factors']):.2f}–"
                f"{np.max(values['weight_factors']):.2f} |"
            )
    return "\n".join(
        [
            "## Gradient squeeze: does each sigmoid layer shrink the error 4x?",
            "",
            f"{setup['depth']} hidden layers of {setup['width']} units (the trainer's "
            f"MLP and initialisation), error `dL/dz` at each layer's pre-activations "
            f"on {setup['probe_size']} test images, at initialisation and after "
            f"{setup['steps']} steps of {setup['optimizer']} (batch "
            f"{setup['batch_size']}). A layer's *squeeze* is "
            "`|δ_l+1| / |δ_l|` (the mean is geometric); `|δ_1| / |δ_L|` is the "
            "error left at the first layer relative to the last.",
            "",
            f"![error norm per layer]({figures_link}/gradient_squeeze.png)",
            "",
            "| activation | squeeze per layer, init | δ_1/δ_L, init "
            "| squeeze per layer, trained | δ_1/δ_L, trained | test accuracy |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            "Sigmoid network, factor `|δ_l| / |δ_l+1|` of each layer (bound 1/4), "
            "its σ′ part (at most max σ′ = 1/4 by construction) and its weight "
            "part `|Wᵀδ| / |δ|`:",
            "",
            f"![sigmoid factors]({figures_link}/gradient_squeeze_sigmoid.png)",
            "",
            "| stage | factor per layer (layer 1 … L-1) | max σ′ part | weight part |",
            "| --- | --- | --- | --- |",
            *factor_rows,
            "",
            f"Verdict: {result['verdict']}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser("gradient_squeeze", __doc__)
    parser.add_argument(
        "--activations",
        default="sigmoid,tanh,relu,gelu",
        help="comma-separated jax_acts names, sigmoid among them "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--depth", type=int, default=10, help="hidden layers (default: %(default)s)"
    )
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="units per layer (default: 256; 128 with --quick)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps (default: 1000; 60 with --quick)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, help="minibatch (default: %(default)s)"
    )
    parser.add_argument(
        "--optimizer",
        choices=("adamw", "sgd"),
        default="adamw",
        help="adamw at the trainer's default rate, or SGD with momentum at "
        f"{SGD_LEARNING_RATE} (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    activations = [name.strip() for name in args.activations.split(",") if name]
    unknown = [name for name in activations if name not in A.names()]
    if unknown or "sigmoid" not in activations:
        parser.error(
            f"--activations {args.activations!r}: unknown {unknown or 'none'}; "
            f"sigmoid must be included; choose from {', '.join(A.names())}"
        )
    if args.depth < 2:
        parser.error(f"--depth {args.depth}: need at least 2 layers to compare")
    width = args.width or (128 if args.quick else 256)
    steps = args.steps or (60 if args.quick else 1000)
    out = prepare_out(args.out)
    use_agg_backend()

    data = load_data(
        args.data_dir,
        train_size=5_000 if args.quick else None,
        test_size=2_000 if args.quick else None,
    )
    setup = {
        "depth": args.depth,
        "width": width,
        "steps": steps,
        "batch_size": args.batch_size,
        "probe_size": 500 if args.quick else 1_000,
        "optimizer": args.optimizer,
        "train_examples": len(data.train_labels),
        "seed": args.seed,
    }
    results = {}
    for name in activations:
        results[name] = measure(
            name,
            data,
            depth=args.depth,
            width=width,
            steps=steps,
            batch_size=args.batch_size,
            probe_size=setup["probe_size"],
            optimizer_name=args.optimizer,
            seed=args.seed,
        )
        print(
            f"{name:<10} squeeze per layer: init "
            f"{1 / results[name]['init']['mean_layer_factor']:6.2f}x  trained "
            f"{1 / results[name]['trained']['mean_layer_factor']:6.2f}x  "
            f"test accuracy {results[name]['trained']['test_accuracy']:.4f}",
            flush=True,
        )

    plot_norms(results, steps, out / "gradient_squeeze.png")
    plot_sigmoid_factors(
        results["sigmoid"], steps, out / "gradient_squeeze_sigmoid.png"
    )
    result = {
        "claim": CLAIM,
        "sigmoid_bound": SIGMOID_BOUND,
        "setup": setup,
        "activations": results,
        "verdict": verdict(results, steps),
        "figures": ["gradient_squeeze.png", "gradient_squeeze_sigmoid.png"],
    }
    write_json(out, "gradient_squeeze", result)
    print(result["verdict"])
    return result


if __name__ == "__main__":
    main()
