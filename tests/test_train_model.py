"""Tests of the MLP, its initialisation, loss and accuracy against float64 numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from train.model import (
    MLP,
    PIXEL_MEAN,
    PIXEL_STD,
    accuracy,
    count_params,
    cross_entropy_loss,
    softmax_cross_entropy,
)


def numpy_params(model: MLP) -> list[tuple[np.ndarray, np.ndarray]]:
    layers = [*model.hidden_layers, model.output]
    return [
        (
            np.asarray(layer.kernel[...], np.float64),
            np.asarray(layer.bias[...], np.float64),
        )
        for layer in layers
    ]


def numpy_forward(model: MLP, images: np.ndarray, activation) -> list[np.ndarray]:
    """Hidden activations and logits in float64, from the model's weights."""
    x = images.reshape(len(images), -1).astype(np.float64)
    if np.issubdtype(images.dtype, np.integer):
        x = x / 255.0
    x = (x - PIXEL_MEAN) / PIXEL_STD
    outputs = []
    params = numpy_params(model)
    for kernel, bias in params[:-1]:
        x = activation(x @ kernel + bias)
        outputs.append(x)
    kernel, bias = params[-1]
    outputs.append(x @ kernel + bias)
    return outputs


def numpy_log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def default_model():
    return MLP(rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(8, 28, 28, 1), dtype=np.uint8)


def test_logits_have_shape_batch_by_num_classes(default_model, images):
    assert default_model(images).shape == (8, 10)


def test_relu_logits_match_float64_numpy_forward_pass(images):
    model = MLP(hidden=(64, 32), rngs=nnx.Rngs(1))
    expected = numpy_forward(model, images, lambda x: np.maximum(x, 0.0))[-1]
    np.testing.assert_allclose(model(images), expected, rtol=1e-4, atol=1e-4)


def test_tanh_hidden_activations_match_float64_numpy(images):
    model = MLP(hidden=(64, 32, 16), activation="tanh", rngs=nnx.Rngs(2))
    expected = numpy_forward(model, images, np.tanh)[:-1]
    actual = model.hidden_activations(images)
    assert [a.shape for a in actual] == [(8, 64), (8, 32), (8, 16)]
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_flat_float_images_in_unit_range_give_the_uint8_logits(images):
    model = MLP(hidden=(32,), rngs=nnx.Rngs(3))
    flat = images.reshape(8, 784).astype(np.float32) / 255.0
    np.testing.assert_allclose(model(flat), model(images), rtol=1e-5, atol=1e-5)


def test_images_of_wrong_size_are_rejected():
    model = nnx.eval_shape(lambda: MLP(hidden=(8,), rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"expected \[batch, 28, 28, 1\]"):
        model(jnp.zeros((2, 32, 32, 1), jnp.uint8))


def test_hidden_layers_follow_the_requested_sizes():
    model = nnx.eval_shape(lambda: MLP(hidden=(30, 20, 10), rngs=nnx.Rngs(0)))
    shapes = [layer.kernel.shape for layer in model.hidden_layers]
    assert shapes == [(784, 30), (30, 20), (20, 10)]
    assert model.output.kernel.shape == (10, 10)


def test_parameter_count_of_784_512_512_10_is_669706(default_model):
    # 784*512 + 512 + 512*512 + 512 + 512*10 + 10, counted by hand.
    assert count_params(default_model) == 669_706


def test_relu_kernels_have_he_variance_two_over_fan_in(default_model):
    kernel = np.asarray(default_model.hidden_layers[0].kernel[...])
    # 401,408 draws: the sample variance is within 1% of the target with
    # overwhelming probability (its relative standard error is 0.22%).
    assert kernel.var() == pytest.approx(2.0 / 784, rel=0.01)


def test_tanh_kernels_have_glorot_variance_two_over_fan_sum():
    model = MLP(activation="tanh", rngs=nnx.Rngs(5))
    kernel = np.asarray(model.hidden_layers[0].kernel[...])
    assert kernel.var() == pytest.approx(2.0 / (784 + 512), rel=0.01)


def test_dropout_key_zeroes_about_the_dropout_rate_of_units(images):
    model = MLP(hidden=(2048,), dropout=0.25, activation="sigmoid", rngs=nnx.Rngs(6))
    kept = model.hidden_activations(images, dropout_key=jax.random.key(0))[0]
    # Sigmoid outputs are never 0, so every zero is a dropped unit.
    assert float(jnp.mean(kept == 0.0)) == pytest.approx(0.25, abs=0.01)


def test_dropout_scales_kept_units_by_one_over_keep_probability(images):
    model = MLP(hidden=(256,), dropout=0.25, activation="sigmoid", rngs=nnx.Rngs(7))
    plain = np.asarray(model.hidden_activations(images)[0], np.float64)
    kept = np.asarray(
        model.hidden_activations(images, dropout_key=jax.random.key(1))[0], np.float64
    )
    mask = kept != 0.0
    np.testing.assert_allclose(kept[mask], plain[mask] / 0.75, rtol=1e-5)


def test_no_dropout_key_means_deterministic_evaluation(images):
    model = MLP(hidden=(64,), dropout=0.5, rngs=nnx.Rngs(8))
    np.testing.assert_array_equal(model(images), model(images))


def test_cross_entropy_matches_float64_log_softmax():
    rng = np.random.default_rng(9)
    logits = rng.normal(scale=5.0, size=(16, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=16)
    expected = -numpy_log_softmax(logits)[np.arange(16), labels].mean()
    loss = cross_entropy_loss(jnp.asarray(logits), jnp.asarray(labels))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_stays_finite_for_logits_of_1e30():
    logits = jnp.array([[1e30, -1e30, 0.0]], jnp.float32)
    per_example = softmax_cross_entropy(logits, jnp.array([1]))
    # -log softmax at the -1e30 logit is 2e30 by the closed form.
    assert float(per_example[0]) == pytest.approx(2e30, rel=1e-6)


def test_label_smoothing_matches_the_mixed_target_cross_entropy():
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=6)
    targets = np.full((6, 10), 0.1 / 10)
    targets[np.arange(6), labels] += 0.9
    expected = -(targets * numpy_log_softmax(logits)).sum(axis=-1)
    actual = softmax_cross_entropy(
        jnp.asarray(logits), jnp.asarray(labels), label_smoothing=0.1
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_accuracy_counts_argmax_hits():
    logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = jnp.array([1, 1, 1, 0])
    assert float(accuracy(logits, labels)) == 0.75


def test_float_labels_are_rejected():
    with pytest.raises(TypeError, match="labels must be integer"):
        cross_entropy_loss(jnp.zeros((2, 10)), jnp.zeros((2,)))


def test_mismatched_label_count_is_rejected():
    with pytest.raises(ValueError, match="disagree"):
        accuracy(jnp.zeros((3, 10)), jnp.zeros((2,), jnp.int32))


def test_input_dropout_leaves_an_empty_image_unchanged():
    # Dropped pixels become background (intensity 0), so a blank image is a
    # fixed point of input dropout whatever the mask.
    model = MLP(hidden=(16,), input_dropout=0.5, rngs=nnx.Rngs(11))
    blank = np.zeros((4, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(
        model(blank, dropout_key=jax.random.key(2)), model(blank)
    )


def test_input_dropout_changes_the_logits_of_a_drawn_image(images):
    model = MLP(hidden=(16,), input_dropout=0.5, rngs=nnx.Rngs(11))
    dropped = model(images, dropout_key=jax.random.key(2))
    assert not np.allclose(dropped, model(images))
