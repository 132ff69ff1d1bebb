"""Tests of the experiment scripts: their measuring instruments against float64
numpy references, and every experiment run once in --quick mode on real MNIST through
the report, its JSON checked for what holds whatever the seed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    # The scripts import their shared helper as a sibling module.
    sys.path.insert(0, str(SCRIPTS))

import _experiment_common as common  # noqa: E402
import dying_relu  # noqa: E402
import gradient_squeeze  # noqa: E402
import report  # noqa: E402
import softmax_digits  # noqa: E402
import training_speed  # noqa: E402

import jax_acts as A  # noqa: E402
from train.model import MLP, PIXEL_MEAN, PIXEL_STD  # noqa: E402

needs_mnist = pytest.mark.skipif(
    not os.environ.get("MNIST_DIR"),
    reason="MNIST_DIR is unset: point it at a folder holding the four MNIST IDX "
    "files to run the experiments on real data",
)


def numpy_mlp(model: MLP) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The model's kernels and biases as float64 numpy arrays, input side first."""
    layers = [*model.hidden_layers, model.output]
    kernels = [np.asarray(layer.kernel[...], dtype=np.float64) for layer in layers]
    biases = [np.asarray(layer.bias[...], dtype=np.float64) for layer in layers]
    return kernels, biases


def numpy_inputs(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1) / 255.0 - PIXEL_MEAN) / PIXEL_STD


def random_images(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8)


# The instruments, on small models and synthetic images (no MNIST needed).


def test_backprop_norms_match_float64_backpropagation():
    model = MLP(hidden=(7, 6, 5), activation="sigmoid", rngs=nnx.Rngs(3))
    images = random_images(16, seed=1)
    labels = np.arange(16, dtype=np.int32) % 10
    kernels, biases = numpy_mlp(model)

    pre_activations, h = [], numpy_inputs(images)
    for kernel, bias in zip(kernels[:-1], biases[:-1], strict=True):
        pre_activations.append(h @ kernel + bias)
        h = 1.0 / (1.0 + np.exp(-pre_activations[-1]))
    logits = h @ kernels[-1] + biases[-1]
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    error = (probabilities - np.eye(10)[labels]) / len(labels)
    expected = []
    for layer in reversed(range(len(pre_activations))):
        sigma = 1.0 / (1.0 + np.exp(-pre_activations[layer]))
        error = (error @ kernels[layer + 1].T) * sigma * (1.0 - sigma)
        expected.insert(0, np.linalg.norm(error))

    measured = gradient_squeeze.backprop_norms(model, images, labels)
    np.testing.assert_allclose(measured["error_norms"], expected, rtol=1e-4)


def test_sigmoid_activation_factor_never_exceeds_a_quarter():
    model = MLP(hidden=(32,) * 4, activation="sigmoid", rngs=nnx.Rngs(0))
    images = random_images(64, seed=2)
    labels = np.arange(64, dtype=np.int32) % 10
    measured = gradient_squeeze.backprop_norms(model, images, labels)
    assert np.all(np.asarray(measured["activation_factors"]) <= 0.25 + 1e-6)


def test_alive_units_match_float64_forward_pass():
    model = MLP(hidden=(12, 9), activation="relu", rngs=nnx.Rngs(5))
    # Push a few units of each layer far negative so that some are dead.
    model.hidden_layers[0].bias[...] = jnp.where(jnp.arange(12) < 4, -1e3, 0.0)
    model.hidden_layers[1].bias[...] = jnp.where(jnp.arange(9) < 3, -1e3, 0.0)
    images = random_images(50, seed=4)
    kernels, biases = numpy_mlp(model)
    h, expected = numpy_inputs(images), []
    for kernel, bias in zip(kernels[:-1], biases[:-1], strict=True):
        z = h @ kernel + bias
        expected.append((z > 0).any(axis=0))
        h = np.maximum(z, 0.0)

    alive = dying_relu.alive_units(model, images, batch_size=16)
    for layer_alive, layer_expected in zip(alive, expected, strict=True):
        np.testing.assert_array_equal(layer_alive, layer_expected)
    assert not alive[0][:4].any() and not alive[1][:3].any()


def test_batch_indices_visit_every_example_once_per_epoch():
    order = common.batch_indices(num_examples=100, steps=30, batch_size=10, seed=0)
    assert order.shape == (30, 10)
    for epoch in range(3):
        seen = np.sort(order[10 * epoch : 10 * (epoch + 1)].ravel())
        np.testing.assert_array_equal(seen, np.arange(100))


def test_batch_larger_than_data_is_refused_with_its_size():
    with pytest.raises(ValueError, match="batch_size 20 exceeds the 10"):
        common.batch_indices(num_examples=10, steps=1, batch_size=20, seed=0)


def test_time_to_target_is_the_first_epoch_at_or_above_it():
    history = [
        {"test_accuracy": a, "epoch_seconds": 2.0, "train_loss": 0.1}
        for a in (0.95, 0.97, 0.965, 0.98)
    ]
    measured = training_speed.time_to_target(history, 5.0, 0.97)
    assert measured["epochs_to_target"] == 2
    assert measured["train_seconds_to_target"] == 4.0
    assert measured["wall_seconds_to_target"] == 9.0


def test_time_to_target_never_reached_is_none():
    history = [{"test_accuracy": 0.9, "epoch_seconds": 1.0, "train_loss": 0.3}]
    measured = training_speed.time_to_target(history, 1.0, 0.97)
    assert measured["epochs_to_target"] is None
    assert measured["wall_seconds_to_target"] is None


def test_lookalike_fours_are_labelled_4_with_7_or_9_as_rival():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=300).astype(np.int32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    chosen = softmax_digits.select(logits, probabilities, labels, count=5)
    assert chosen["four_like_seven_or_nine"]
    for index in chosen["four_like_seven_or_nine"]:
        others = np.delete(np.arange(10), 4)
        rival = others[np.argmax(probabilities[index, others])]
        assert labels[index] == 4 and rival in (7, 9)


def test_quick_report_defaults_never_write_into_docs():
    out, results = report.output_paths(None, None, quick=True)
    assert "docs" not in out.parts and "docs" not in results.parts


def test_report_refuses_an_existing_file_as_out(tmp_path):
    target = tmp_path / "figures"
    target.write_text("keep me")
    with pytest.raises(SystemExit):
        report.main(["--quick", "--out", str(target), "--only", "gallery"])
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    "script", [dying_relu, gradient_squeeze, softmax_digits, training_speed]
)
def test_missing_data_ends_the_script_with_a_message(tmp_path, script):
    missing = tmp_path / "no-mnist"
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--quick", "--data-dir", str(missing), "--out", str(tmp_path)])
    assert str(exit_info.value).startswith(
        f"error: MNIST folder {missing} does not exist; expected a folder holding "
        "the four MNIST IDX files."
    )


# Command line and full quick runs.


@pytest.mark.slow
def test_gallery_command_line_writes_its_figure_and_json(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "gallery.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    assert (tmp_path / "gallery.png").stat().st_size > 0
    table = json.loads((tmp_path / "gallery.json").read_text())["derivative_extremes"]
    assert abs(table["sigmoid"]["derivative_max"] - 0.25) <= 1e-6


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """Every experiment run once in --quick mode through the report."""
    out = tmp_path_factory.mktemp("quick_report")
    report.main(["--quick", "--out", str(out), "--results", str(out / "results.md")])
    return out


def measured(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}.json").read_text())


@needs_mnist
@pytest.mark.slow
def test_sigmoid_derivative_peaks_at_a_quarter(quick_report):
    table = measured(quick_report, "gallery")["derivative_extremes"]
    assert abs(table["sigmoid"]["derivative_max"] - 0.25) <= 1e-6


@needs_mnist
@pytest.mark.slow
def test_tanh_and_relu_derivatives_peak_at_one(quick_report):
    table = measured(quick_report, "gallery")["derivative_extremes"]
    assert abs(table["tanh"]["derivative_max"] - 1.0) <= 1e-6
    assert abs(table["relu"]["derivative_max"] - 1.0) <= 1e-6


@needs_mnist
@pytest.mark.slow
def test_gallery_covers_every_activation(quick_report):
    result = measured(quick_report, "gallery")
    covered = set(result["derivative_extremes"]) | set(result["aliases"])
    assert covered == set(A.names())


@needs_mnist
@pytest.mark.slow
def test_sigmoid_network_error_shrinks_2x_per_layer_at_init(quick_report):
    sigmoid = measured(quick_report, "gradient_squeeze")["activations"]["sigmoid"]
    assert sigmoid["init"]["mean_layer_factor"] <= 0.5


@needs_mnist
@pytest.mark.slow
def test_relu_network_error_does_not_shrink_2x_per_layer_at_init(quick_report):
    relu = measured(quick_report, "gradient_squeeze")["activations"]["relu"]
    assert relu["init"]["mean_layer_factor"] > 0.5


@needs_mnist
@pytest.mark.slow
def test_error_norms_cover_every_hidden_layer(quick_report):
    result = measured(quick_report, "gradient_squeeze")
    for stages in result["activations"].values():
        for stage in stages.values():
            assert len(stage["error_norms"]) == result["setup"]["depth"]
            assert all(norm > 0 for norm in stage["error_norms"])


@needs_mnist
@pytest.mark.slow
def test_dead_fractions_are_fractions_or_marked_diverged(quick_report):
    sweeps = measured(quick_report, "dying_relu")["sweeps"]
    runs = [run for by_opt in sweeps.values() for rs in by_opt.values() for run in rs]
    assert runs
    for run in runs:
        if run["diverged"]:
            assert run["dead_fraction"] is None
        else:
            assert 0.0 <= run["dead_fraction"] <= 1.0
            assert all(0.0 <= dead <= 1.0 for dead in run["dead_per_layer"])


@needs_mnist
@pytest.mark.slow
def test_training_speed_accuracies_are_fractions(quick_report):
    result = measured(quick_report, "training_speed")
    for by_activation in result["runs"].values():
        assert set(by_activation) == set(training_speed.ACTIVATIONS)
        for run in by_activation.values():
            assert all(0.0 <= a <= 1.0 for a in run["test_accuracy"])


@needs_mnist
@pytest.mark.slow
def test_softmax_probabilities_sum_to_one(quick_report):
    groups = measured(quick_report, "softmax_digits")["groups"]
    for digits in groups.values():
        for digit in digits:
            total = np.sum(np.asarray(digit["probabilities"], dtype=np.float64))
            assert abs(total - 1.0) <= 1e-5


@needs_mnist
@pytest.mark.slow
def test_softmax_prediction_is_the_likeliest_digit(quick_report):
    groups = measured(quick_report, "softmax_digits")["groups"]
    for digits in groups.values():
        for digit in digits:
            assert digit["predicted"] == int(np.argmax(digit["probabilities"]))


@needs_mnist
@pytest.mark.slow
def test_confident_digits_are_more_confident_than_ambiguous_ones(quick_report):
    groups = measured(quick_report, "softmax_digits")["groups"]
    least_confident = min(d["max_probability"] for d in groups["confident"])
    most_ambiguous = max(d["max_probability"] for d in groups["ambiguous"])
    assert least_confident >= most_ambiguous


@needs_mnist
@pytest.mark.slow
def test_report_links_only_files_that_exist(quick_report):
    markdown = (quick_report / "results.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert len(figures) >= 5
    for link in links:
        assert (quick_report / link).is_file(), link


@needs_mnist
@pytest.mark.slow
def test_report_states_a_verdict_for_every_claim(quick_report):
    markdown = (quick_report / "results.md").read_text()
    for name in report.EXPERIMENTS:
        assert measured(quick_report, name)["verdict"] in markdown
