"""Claims about softmax, log_softmax, logsumexp and softmax_jacobian: float64
agreement, stability, and every edge case (infinite logits, empty or masked rows,
NaN, half precision) with its gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

import jax_acts as A

NORMALISERS = [A.softmax, A.log_softmax, A.logsumexp]


def _random_logits(shape, scale=10.0, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * scale


def _grad_of_weighted_sum(fn, x, **kwargs):
    """Gradient of sum(w * fn(x)) with fixed weights, so no entry is special."""
    out_shape = jax.eval_shape(lambda v: fn(v, **kwargs), x).shape
    weights = jnp.linspace(0.5, 1.5, int(np.prod(out_shape))).reshape(out_shape)

    def loss(v):
        out = fn(v, **kwargs)
        return jnp.sum(jnp.where(jnp.isfinite(out), out, 0) * weights)

    return jax.grad(loss)(x)


@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2)])
def test_softmax_matches_float64_reference(axis):
    x = _random_logits((4, 5, 6))
    got = np.asarray(A.softmax(jnp.asarray(x), axis=axis), dtype=np.float64)
    expected = special.softmax(x.astype(np.float64), axis=axis)
    # Rounding x - max costs |x - max| half-ulps in exp, as in any float32 softmax.
    distance = np.max(x, axis=axis, keepdims=True) - x.astype(np.float64)
    allowed = (1e-6 + distance * 2.0**-23) * expected
    assert np.all(np.abs(got - expected) <= allowed)


@pytest.mark.parametrize("axis", [-1, 0, (1, 2)])
def test_log_softmax_matches_float64_reference(axis):
    x = _random_logits((4, 5, 6))
    got = np.asarray(A.log_softmax(jnp.asarray(x), axis=axis))
    expected = special.log_softmax(x.astype(np.float64), axis=axis)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("axis", [None, -1, 0, (0, 2)])
def test_logsumexp_matches_float64_reference(axis):
    x = _random_logits((4, 5, 6))
    got = np.asarray(A.logsumexp(jnp.asarray(x), axis=axis))
    expected = special.logsumexp(x.astype(np.float64), axis=axis)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_logsumexp_reduces_every_axis_by_default_like_jax_nn():
    x = jnp.asarray(_random_logits((3, 4)))
    assert A.logsumexp(x).shape == jax.nn.logsumexp(x).shape == ()


def test_logsumexp_keepdims_keeps_reduced_axes():
    x = jnp.asarray(_random_logits((3, 4)))
    assert A.logsumexp(x, axis=1, keepdims=True).shape == (3, 1)


def test_float64_normalisers_match_scipy_to_float64_precision():
    x = _random_logits((6, 7)).astype(np.float64) * 3
    with jax.enable_x64(True):
        inputs = jnp.asarray(x, dtype=jnp.float64)
        got = [np.asarray(fn(inputs, axis=-1)) for fn in NORMALISERS]
    np.testing.assert_allclose(got[0], special.softmax(x, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(got[1], special.log_softmax(x, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(got[2], special.logsumexp(x, axis=-1), rtol=1e-13)


def test_log_softmax_gradient_matches_float64_closed_form():
    x = _random_logits((5, 8))
    got = np.asarray(_grad_of_weighted_sum(A.log_softmax, jnp.asarray(x)))
    weights = np.linspace(0.5, 1.5, x.size).reshape(x.shape)
    probs = special.softmax(x.astype(np.float64), axis=-1)
    expected = weights - probs * weights.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_huge_finite_logits_are_stable():
    x = jnp.array([[3e38, -3e38, 0.0], [1e30, 1e30 - 1e24, -1e30]])
    probs = np.asarray(A.softmax(x))
    np.testing.assert_array_equal(probs, [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.isfinite(np.asarray(A.logsumexp(x, axis=-1))).all()
    assert np.isfinite(np.asarray(_grad_of_weighted_sum(A.log_softmax, x))).all()


def test_positive_infinite_logits_share_the_mass_equally():
    x = jnp.array([jnp.inf, 0.0, jnp.inf, -jnp.inf, 5.0])
    np.testing.assert_array_equal(A.softmax(x), [0.5, 0.0, 0.5, 0.0, 0.0])


def test_log_softmax_with_infinite_logits_is_the_log_of_the_limit():
    x = jnp.array([jnp.inf, 0.0, jnp.inf])
    np.testing.assert_allclose(
        np.asarray(A.log_softmax(x)), [-np.log(2), -np.inf, -np.log(2)], rtol=1e-7
    )


def test_logsumexp_with_an_infinite_logit_is_infinite():
    assert float(A.logsumexp(jnp.array([jnp.inf, 0.0]))) == np.inf


@pytest.mark.parametrize("fn", NORMALISERS)
def test_rows_with_infinite_logits_have_zero_gradient(fn):
    x = jnp.array([[jnp.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    grad = np.asarray(_grad_of_weighted_sum(fn, x, axis=-1))
    np.testing.assert_array_equal(grad[0], 0.0)
    assert np.all(grad[1] != 0)


def test_all_negative_infinite_row_gives_zero_probabilities():
    x = jnp.full((2, 3), -jnp.inf).at[1].set(0.0)
    np.testing.assert_array_equal(A.softmax(x)[0], 0.0)


def test_all_negative_infinite_row_gives_negative_infinite_logs():
    x = jnp.full((2, 3), -jnp.inf).at[1].set(0.0)
    np.testing.assert_array_equal(A.log_softmax(x)[0], -np.inf)
    assert float(A.logsumexp(x, axis=-1)[0]) == -np.inf


@pytest.mark.parametrize("fn", NORMALISERS)
def test_all_negative_infinite_row_has_zero_gradient(fn):
    x = jnp.full((2, 3), -jnp.inf).at[1].set(jnp.array([0.0, 1.0, 2.0]))
    grad = np.asarray(_grad_of_weighted_sum(fn, x, axis=-1))
    np.testing.assert_array_equal(grad[0], 0.0)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("fn", NORMALISERS)
def test_fully_masked_row_gives_the_empty_row_result_and_zero_gradient(fn):
    x = jnp.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    mask = jnp.array([[False, False, False], [True, True, True]])
    out = np.asarray(fn(x, axis=-1, where=mask))
    empty_value = 0.0 if fn is A.softmax else -np.inf
    np.testing.assert_array_equal(out[0], empty_value)
    grad = np.asarray(_grad_of_weighted_sum(fn, x, axis=-1, where=mask))
    np.testing.assert_array_equal(grad[0], 0.0)


@pytest.mark.parametrize("masked_value", [1e30, -1e30, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("fn", NORMALISERS)
def test_masked_entries_never_affect_values(fn, masked_value):
    kept = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    x = jnp.array([kept[0], masked_value, kept[1], kept[2]], dtype=jnp.float32)
    mask = jnp.array([True, False, True, True])
    got = np.asarray(fn(x, axis=-1, where=mask))
    expected = np.asarray(fn(jnp.asarray(kept), axis=-1))
    if got.ndim:
        np.testing.assert_array_equal(got[[0, 2, 3]], expected)
        assert got[1] == (0.0 if fn is A.softmax else -np.inf)
    else:
        assert got == expected


@pytest.mark.parametrize("masked_value", [1e30, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("fn", NORMALISERS)
def test_masked_entries_never_affect_gradients(fn, masked_value):
    kept = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    x = jnp.array([kept[0], masked_value, kept[1], kept[2]], dtype=jnp.float32)
    mask = jnp.array([True, False, True, True])

    def loss(v):
        out = fn(v, axis=-1, where=mask)
        out = out[jnp.array([0, 2, 3])] if out.ndim else out
        return jnp.sum(out * jnp.array([1.0, 2.0, 3.0])[: out.size])

    def reference_loss(v):
        out = fn(v, axis=-1)
        return jnp.sum(out * jnp.array([1.0, 2.0, 3.0])[: out.size])

    grad = np.asarray(jax.grad(loss)(x))
    assert grad[1] == 0.0
    expected = np.asarray(jax.grad(reference_loss)(jnp.asarray(kept)))
    np.testing.assert_allclose(grad[[0, 2, 3]], expected, rtol=1e-6)


def test_where_that_does_not_broadcast_is_rejected_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 3\)"):
        A.softmax(jnp.zeros((2, 3)), where=jnp.ones(4, dtype=bool))


@pytest.mark.parametrize("fn", NORMALISERS)
def test_nan_in_a_row_gives_nan_in_that_row_only(fn):
    x = jnp.array([[0.0, jnp.nan, 1.0], [0.0, 2.0, 1.0]])
    out = np.asarray(fn(x, axis=-1))
    assert np.isnan(out[0]).all()
    assert not np.isnan(out[1]).any()


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_accumulates_in_float32(dtype):
    # 10 000 equal logits: a half-precision running sum would stall at 2048
    # (float16) or 256 (bfloat16), far from 10 000.
    x = jnp.zeros(10_000, dtype=dtype)
    probs = A.softmax(x)
    assert probs.dtype == dtype
    np.testing.assert_allclose(np.asarray(probs, np.float64), 1e-4, rtol=1e-2)
    lse = A.logsumexp(x)
    assert lse.dtype == dtype
    np.testing.assert_allclose(float(lse), np.log(10_000), rtol=1e-2)


@pytest.mark.parametrize("fn", NORMALISERS)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_floating_dtype_is_preserved(fn, dtype):
    assert fn(jnp.ones((2, 3), dtype=dtype), axis=-1).dtype == dtype


def test_integer_logits_are_promoted_to_the_default_float():
    probs = A.softmax(jnp.array([0, 1, 2]))
    assert probs.dtype == jnp.float32
    expected = special.softmax(np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(probs), expected, rtol=1e-6)


row_logits = hnp.arrays(
    np.float32,
    st.integers(1, 8),
    elements=st.floats(-1e4, 1e4, width=32),
)


@settings(max_examples=80, deadline=None)
@given(logits=row_logits)
def test_softmax_sums_to_one(logits):
    total = float(np.sum(np.asarray(A.softmax(jnp.asarray(logits)), np.float64)))
    assert abs(total - 1) <= 1e-6


@settings(max_examples=80, deadline=None)
@given(
    logits=hnp.arrays(np.int32, st.integers(1, 8), elements=st.integers(-1000, 1000)),
    shift=st.integers(-1000, 1000),
)
def test_softmax_is_shift_invariant(logits, shift):
    # Integer logits and shifts keep x + c exact in float32, so only the
    # normalisation's own rounding is compared.
    x = jnp.asarray(logits, dtype=jnp.float32)
    np.testing.assert_allclose(
        np.asarray(A.softmax(x + shift)),
        np.asarray(A.softmax(x)),
        rtol=1e-6,
        atol=1e-37,
    )


@settings(max_examples=80, deadline=None)
@given(logits=row_logits)
def test_softmax_values_are_probabilities(logits):
    probs = np.asarray(A.softmax(jnp.asarray(logits)))
    assert np.all((probs >= 0) & (probs <= 1))


@settings(max_examples=80, deadline=None)
@given(logits=row_logits)
def test_jacobian_rows_sum_to_zero(logits):
    jacobian = np.asarray(A.softmax_jacobian(jnp.asarray(logits)), np.float64)
    assert np.all(np.abs(jacobian.sum(axis=-1)) <= 1e-6)


@pytest.mark.parametrize("shape, axis", [((7,), -1), ((3, 5), -1), ((4, 3, 2), 1)])
def test_softmax_jacobian_matches_autodiff_jacobian(shape, axis):
    x = jnp.asarray(_random_logits(shape, scale=3.0))
    got = np.asarray(A.softmax_jacobian(x, axis=axis))
    full = np.asarray(jax.jacobian(lambda v: A.softmax(v, axis=axis))(x))
    # The autodiff Jacobian couples every entry with every other; keep the
    # blocks within one row along the axis and lay them out as (*batch, n, n).
    n = x.shape[axis]
    x_axes = list(range(x.ndim))
    batch_axes = [a for a in x_axes if a != axis % x.ndim]
    moved = np.moveaxis(full, [axis % x.ndim, x.ndim + axis % x.ndim], [-2, -1])
    batch_shape = [x.shape[a] for a in batch_axes]
    blocks = moved.reshape([*batch_shape, *batch_shape, n, n]) if batch_shape else moved
    for index in np.ndindex(*batch_shape):
        expected = blocks[index + index] if batch_shape else blocks
        np.testing.assert_allclose(got[index], expected, rtol=1e-5, atol=1e-7)


def test_softmax_jacobian_has_shape_batch_n_n():
    assert A.softmax_jacobian(jnp.zeros((4, 3, 2)), axis=1).shape == (4, 2, 3, 3)


def test_softmax_jacobian_diagonal_is_accurate_for_a_dominant_entry():
    x = np.array([20.0, 0.0, 1.0], dtype=np.float32)
    got = np.asarray(A.softmax_jacobian(jnp.asarray(x)))
    p = special.softmax(x.astype(np.float64))
    expected = np.diag(p) - np.outer(p, p)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_softmax_jacobian_is_zero_for_rows_with_infinite_logits():
    got = np.asarray(A.softmax_jacobian(jnp.array([jnp.inf, 0.0, 1.0])))
    np.testing.assert_array_equal(got, 0.0)


def test_softmax_jacobian_rejects_a_tuple_axis():
    with pytest.raises(TypeError, match="single integer axis"):
        A.softmax_jacobian(jnp.zeros((2, 3)), axis=(0, 1))


def test_logsumexp_takes_where_and_keepdims_by_keyword_only():
    x = jnp.zeros((2, 3))
    with pytest.raises(TypeError):
        A.logsumexp(x, 0, jnp.ones((2, 3), dtype=bool))


def test_softmax_jacobian_takes_a_numpy_integer_axis():
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(
        A.softmax_jacobian(x, axis=np.int64(0)), A.softmax_jacobian(x, axis=0)
    )


def test_softmax_jacobian_refuses_a_tuple_of_axes():
    with pytest.raises(TypeError, match="single integer axis"):
        A.softmax_jacobian(jnp.ones((2, 3)), axis=(0, 1))


@pytest.mark.parametrize(
    "fn, reference",
    [
        (A.softmax, special.softmax),
        (A.log_softmax, special.log_softmax),
        (A.logsumexp, special.logsumexp),
    ],
)
@pytest.mark.parametrize("axis", [[0, 2], [-1], np.int64(1), jnp.int32(-1)])
def test_axis_may_be_a_list_or_an_integer_scalar_as_in_jax_nn(fn, reference, axis):
    x = _random_logits((3, 4, 5))
    expected_axis = tuple(axis) if isinstance(axis, list) else int(axis)
    expected = reference(x.astype(np.float64), axis=expected_axis)
    got = np.asarray(fn(jnp.asarray(x), axis=axis))
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("fn", NORMALISERS)
@pytest.mark.parametrize("axis", [1.0, "last", [0, 1.5]])
def test_axis_that_is_not_an_integer_is_rejected_naming_it(fn, axis):
    with pytest.raises(TypeError, match=r"axis must be an int.*got"):
        fn(jnp.ones((2, 3)), axis=axis)
