"""Tests of the compiled training pieces: schedule, optimizer, shuffling, epochs."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from support import synthetic_mnist

from train import steps
from train.config import Config

CONFIG = Config(
    epochs=4,
    batch_size=64,
    hidden=(32, 16),
    dropout=0.1,
    learning_rate=3e-3,
    warmup_epochs=1.0,
    input_dropout=0.0,
    weight_decay=1e-4,
    label_smoothing=0.0,
)


@pytest.fixture(scope="module")
def data():
    return synthetic_mnist(640, 250)


@pytest.fixture(scope="module")
def fns(data):
    return steps.build(CONFIG, num_train=640, num_test=250)


@pytest.fixture(scope="module")
def device_data(data, fns):
    return steps.put_data(data, fns.mesh)


def test_schedule_reaches_the_peak_at_the_end_of_warm_up():
    schedule = steps.make_schedule(CONFIG, 10)
    assert float(schedule(10)) == pytest.approx(3e-3)


def test_warm_up_as_long_as_the_run_peaks_on_the_last_step():
    config = dataclasses.replace(CONFIG, epochs=1, warmup_epochs=1.0)
    schedule = steps.make_schedule(config, 10)
    rates = [float(schedule(step)) for step in range(10)]
    assert rates[0] == 0.0
    assert rates[-1] == pytest.approx(3e-3)
    assert all(a < b for a, b in itertools.pairwise(rates))


def test_schedule_warms_up_linearly_from_zero():
    schedule = steps.make_schedule(CONFIG, 10)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(1.5e-3)


def test_schedule_decays_by_cosine_to_zero():
    schedule = steps.make_schedule(CONFIG, 10)
    # Cosine over the 40 steps of the run, warm-up included: half-way through
    # the 30 decay steps (step 25) the closed form gives peak * (1 + cos(pi/2)) / 2.
    assert float(schedule(25)) == pytest.approx(1.5e-3, rel=1e-5)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-12)


def test_adamw_decays_kernels_but_not_biases():
    config = dataclasses.replace(CONFIG, weight_decay=0.5, warmup_epochs=0.0)
    tx, schedule = steps.make_optimizer(config, 10)
    params = {"kernel": jnp.full((3, 2), 2.0), "bias": jnp.full((2,), 2.0)}
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero_grads, tx.init(params), params)
    # With zero gradients AdamW's update is -lr * weight_decay * param exactly.
    lr = float(schedule(0))
    np.testing.assert_allclose(updates["kernel"], -lr * 0.5 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(updates["bias"], 0.0)


def test_sgd_with_clipping_bounds_the_update_norm():
    config = dataclasses.replace(
        CONFIG, optimizer="sgd", momentum=0.0, grad_clip=0.5, warmup_epochs=0.0
    )
    tx, schedule = steps.make_optimizer(config, 10)
    params = {"kernel": jnp.zeros((4, 4))}
    grads = {"kernel": jnp.full((4, 4), 10.0)}
    updates, _ = tx.update(grads, tx.init(params), params)
    norm = float(jnp.linalg.norm(updates["kernel"]))
    # Clipped gradient norm 0.5 times the learning rate of step 0.
    assert norm == pytest.approx(0.5 * float(schedule(0)), rel=1e-5)


def test_shuffle_draws_distinct_examples_within_an_epoch(fns):
    batches = np.asarray(fns.shuffle(1))
    assert batches.shape == (10, 64)
    assert len(np.unique(batches)) == batches.size
    assert batches.min() >= 0
    assert batches.max() < 640


def test_shuffle_is_a_function_of_the_epoch(fns):
    np.testing.assert_array_equal(fns.shuffle(3), fns.shuffle(3))
    assert not np.array_equal(fns.shuffle(3), fns.shuffle(4))


def test_init_is_a_function_of_the_seed(fns):
    first, _ = fns.init()
    second, _ = fns.init()
    other, _ = steps.build(
        dataclasses.replace(CONFIG, seed=1), num_train=640, num_test=250
    ).init()

    def kernel(params):
        return np.asarray(params["hidden_layers"][0]["kernel"][...])

    np.testing.assert_array_equal(kernel(first), kernel(second))
    assert not np.array_equal(kernel(first), kernel(other))


def test_scanned_epoch_matches_step_by_step_dispatch(fns, device_data):
    images, labels = device_data.train_images, device_data.train_labels
    params, opt_state = fns.init()
    params, opt_state, scanned = fns.train_epoch(params, opt_state, images, labels, 1)
    scanned_kernel = np.asarray(params["output"]["kernel"][...])

    params, opt_state = fns.init()
    batches = fns.shuffle(1)
    losses = []
    for step_number in range(fns.num_steps):
        params, opt_state, metrics = fns.train_step(
            params, opt_state, images, labels, batches, 1, step_number
        )
        losses.append(float(metrics["loss"]))
    assert float(scanned["loss"]) == pytest.approx(np.mean(losses), rel=1e-5)
    np.testing.assert_allclose(
        params["output"]["kernel"][...], scanned_kernel, rtol=1e-4, atol=1e-6
    )


def test_epoch_learning_rate_is_the_schedule_at_its_last_step(fns, device_data):
    params, opt_state = fns.init()
    _, _, metrics = fns.train_epoch(
        params, opt_state, device_data.train_images, device_data.train_labels, 2
    )
    expected = float(steps.make_schedule(CONFIG, fns.num_steps)(2 * fns.num_steps - 1))
    assert float(metrics["learning_rate"]) == pytest.approx(expected)


def test_evaluate_matches_float64_numpy_on_the_unpadded_test_split(
    data, fns, device_data
):
    params, _ = fns.init()
    metrics = fns.evaluate(params, device_data.test_images, device_data.test_labels)
    model = nnx.merge(fns.graphdef, params)
    logits = np.asarray(model(data.test_images), np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected_loss = -log_probs[np.arange(250), data.test_labels].mean()
    expected_accuracy = (logits.argmax(axis=1) == data.test_labels).mean()
    # 250 real examples were padded to a whole chunk of 1000 for evaluation.
    assert device_data.test_images.shape[0] == 1000
    assert float(metrics["loss"]) == pytest.approx(expected_loss, rel=1e-5)
    assert float(metrics["accuracy"]) == pytest.approx(expected_accuracy)


def test_data_stays_uint8_on_the_device(device_data):
    assert device_data.train_images.dtype == jnp.uint8
    assert device_data.test_images.dtype == jnp.uint8
    assert device_data.train_images.shape == (640, 784)


def test_max_norm_rescales_long_columns_to_the_cap():
    kernel = np.array([[3.0, 0.3], [4.0, 0.4]])  # column norms 5 and 0.5
    projected = steps.project_max_norm({"kernel": jnp.asarray(kernel)}, 2.0)
    np.testing.assert_allclose(projected["kernel"][:, 0], kernel[:, 0] * 2.0 / 5.0)


def test_max_norm_leaves_short_columns_and_biases_unchanged():
    params = {"kernel": jnp.array([[3.0, 0.3], [4.0, 0.4]]), "bias": jnp.full(2, 9.0)}
    projected = steps.project_max_norm(params, 2.0)
    np.testing.assert_array_equal(projected["kernel"][:, 1], params["kernel"][:, 1])
    np.testing.assert_array_equal(projected["bias"], params["bias"])
