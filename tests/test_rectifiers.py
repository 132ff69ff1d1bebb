"""Claims about the rectifiers and their smooth relatives: values and derivatives
against float64 closed forms over each dtype's range, conventions at the kinks,
limits, and agreement with autodiff."""

import functools

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from scipy import special

import jax_acts as A

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_K = np.sqrt(2 / np.pi)


def _std_normal_pdf(x):
    return np.exp(-x * x / 2) / np.sqrt(2 * np.pi)


def _gelu_tanh_parts(x):
    """Returns ``(value, derivative terms)`` of the tanh form in float64."""
    inner = np.where(np.abs(x) > 100, np.sign(x) * 1e9, x + 0.044715 * x**3)
    t = np.tanh(GELU_K * inner)
    inner_slope = np.where(np.abs(x) > 100, 0.0, 1 + 3 * 0.044715 * x * x)
    terms = [0.5 * (1 + t), 0.5 * x * (1 - t * t) * GELU_K * inner_slope]
    return 0.5 * x * (1 + t), terms


def _mish_terms(x):
    softplus = np.logaddexp(0, x)
    return [np.tanh(softplus), x / np.cosh(softplus) ** 2 * special.expit(x)]


# name: (function, value reference, derivative terms reference). The derivative
# is the sum of its terms; errors are measured against the sum of their absolute
# values, so a derivative that cancels to near zero is judged by its condition.
RECTIFIERS = {
    "relu": (A.relu, lambda x: np.maximum(x, 0), lambda x: [(x > 0) * 1.0]),
    "relu6": (
        A.relu6,
        lambda x: np.clip(x, 0, 6),
        lambda x: [((x > 0) & (x < 6)) * 1.0],
    ),
    "leaky_relu": (
        A.leaky_relu,
        lambda x: np.where(x >= 0, x, 0.01 * x),
        lambda x: [np.where(x >= 0, 1.0, 0.01)],
    ),
    "leaky_relu_slope0.25": (
        functools.partial(A.leaky_relu, negative_slope=0.25),
        lambda x: np.where(x >= 0, x, 0.25 * x),
        lambda x: [np.where(x >= 0, 1.0, 0.25)],
    ),
    "elu": (
        A.elu,
        lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
        lambda x: [np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))],
    ),
    "elu_alpha2": (
        functools.partial(A.elu, alpha=2.0),
        lambda x: np.where(x > 0, x, 2 * np.expm1(np.minimum(x, 0))),
        lambda x: [np.where(x > 0, 1.0, 2 * np.exp(np.minimum(x, 0)))],
    ),
    "celu_alpha0.5": (
        functools.partial(A.celu, alpha=0.5),
        lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0) / 0.5)),
        lambda x: [np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / 0.5))],
    ),
    "selu": (
        A.selu,
        lambda x: (
            SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
        ),
        lambda x: [
            SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))
        ],
    ),
    "gelu": (
        A.gelu,
        lambda x: x * special.ndtr(x),
        lambda x: [special.ndtr(x), x * _std_normal_pdf(x)],
    ),
    "gelu_tanh": (
        functools.partial(A.gelu, approximate=True),
        lambda x: _gelu_tanh_parts(x)[0],
        lambda x: _gelu_tanh_parts(x)[1],
    ),
    "silu": (
        A.silu,
        lambda x: x * special.expit(x),
        lambda x: [special.expit(x), x * special.expit(x) * special.expit(-x)],
    ),
    "softplus": (
        A.softplus,
        lambda x: np.logaddexp(0, x),
        lambda x: [special.expit(x)],
    ),
    "mish": (A.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), _mish_terms),
}

BOUNDS = {"float32": 1e-6, "float16": 1e-2, "bfloat16": 1e-2}

# name: (kinks, one-sided derivatives allowed there).
KINKS = {
    "relu": ([0.0], [[0.0, 1.0]]),
    "relu6": ([0.0, 6.0], [[0.0, 1.0], [1.0, 0.0]]),
    "leaky_relu": ([0.0], [[0.01, 1.0]]),
    "elu_alpha2": ([0.0], [[2.0, 1.0]]),
    "selu": ([0.0], [[SELU_SCALE * SELU_ALPHA, SELU_SCALE]]),
}

# name: (limit at -inf, limit at +inf).
LIMITS = {
    "relu": (0.0, np.inf),
    "relu6": (0.0, 6.0),
    "leaky_relu": (-np.inf, np.inf),
    "elu": (-1.0, np.inf),
    "elu_alpha2": (-2.0, np.inf),
    "celu_alpha0.5": (-0.5, np.inf),
    "selu": (-SELU_SCALE * SELU_ALPHA, np.inf),
    "gelu": (0.0, np.inf),
    "gelu_tanh": (0.0, np.inf),
    "silu": (0.0, np.inf),
    "softplus": (0.0, np.inf),
    "mish": (0.0, np.inf),
}

SMOOTH = ["celu_alpha0.5", "gelu", "gelu_tanh", "silu", "softplus", "mish"]


# Rectifier values and derivatives are claimed to 1e-6 relative (1e-2 in half
# precision) down to this magnitude; in the last binades above the underflow
# threshold an intermediate factor (a sigmoid, Phi) may itself underflow.
CUTOFF = 2.0**-100


def _assert_error_within(x, got, reference, scale, dtype, bound, floor=0.0):
    """|got - reference| <= bound * scale (+ floor) where the scale is above the
    cutoff, and <= cutoff below it; values beyond the dtype's range must round
    to the matching infinity."""
    finfo = jnp.finfo(dtype)
    got = np.asarray(got, dtype=np.float64)
    cutoff = max(float(finfo.smallest_normal), CUTOFF)
    with np.errstate(over="ignore"):
        overflows = np.isinf(reference.astype(dtype))
    error = np.where(overflows, 0.0, np.abs(got - reference))
    error = np.where(overflows & (got != np.copysign(np.inf, reference)), np.inf, error)
    allowed = np.where(scale >= cutoff, bound * scale, cutoff) + floor
    bad = ~(error <= allowed)
    if bad.any():
        worst = np.argmax(np.where(bad, np.nan_to_num(error / allowed, nan=np.inf), -1))
        raise AssertionError(
            f"{bad.sum()} of {x.size} inputs out of bound {bound}; worst at "
            f"x={x[worst]!r}: got {got[worst]!r}, reference {reference[worst]!r}"
        )


def _rounding_floor(name, x, reference, derivative):
    """Error the GELU formulas cannot avoid, as in jax.nn.gelu: the tanh form
    forms 1 + tanh(u) and 1 - tanh(u)**2 from a tanh accurate to about 3e-7 near
    -1; the exact form rounds erfc's argument, x**2 ulps in the negative tail."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    if name == "gelu_tanh":
        if derivative:
            return 2.0**-20 * (1 + a * (1 + 0.14 * a * a))
        return 2.0**-21 * a
    if name == "gelu":
        return np.abs(reference) * a * a * 2.0**-23
    return 0.0


def _normal_or_zero(x):
    """Drops subnormal inputs, which XLA flushes to zero before any arithmetic."""
    tiny = float(jnp.finfo(x.dtype).smallest_normal)
    return x[(x == 0) | (np.abs(x.astype(np.float64)) >= tiny)]


def _in_float64(fn, x):
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return fn(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(RECTIFIERS))
def test_value_is_within_bound_of_float64_closed_form(name, dtype, finite_grid):
    fn, value_reference, _ = RECTIFIERS[name]
    x = _normal_or_zero(finite_grid(dtype))
    got = fn(jnp.asarray(x))
    assert got.dtype == jnp.dtype(dtype)
    reference = _in_float64(value_reference, x)
    floor = _rounding_floor(name, x, reference, derivative=False)
    _assert_error_within(
        x, got, reference, np.abs(reference), dtype, BOUNDS[dtype], floor
    )


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(RECTIFIERS))
def test_derivative_is_within_bound_of_float64_closed_form(name, dtype, finite_grid):
    fn, _, derivative_terms = RECTIFIERS[name]
    x = _normal_or_zero(finite_grid(dtype))
    got = A.derivative(fn)(jnp.asarray(x))
    assert got.dtype == jnp.dtype(dtype)
    terms = _in_float64(derivative_terms, x)
    reference = np.sum(terms, axis=0)
    scale = np.sum(np.abs(terms), axis=0)
    floor = _rounding_floor(name, x, reference, derivative=True)
    _assert_error_within(x, got, reference, scale, dtype, BOUNDS[dtype], floor)


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _mp_mish_derivative(x):
    softplus = mpmath.log1p(mpmath.exp(x))
    return mpmath.tanh(softplus) + x * mpmath.sech(softplus) ** 2 * _mp_sigmoid(x)


# name: (value, derivative) in mpmath, for float64 inputs.
MPMATH_RECTIFIERS = {
    "elu": (
        lambda x: x if x > 0 else mpmath.expm1(x),
        lambda x: 1 if x > 0 else mpmath.exp(x),
    ),
    "gelu": (
        lambda x: x * mpmath.ncdf(x),
        lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x),
    ),
    "silu": (
        lambda x: x * _mp_sigmoid(x),
        lambda x: _mp_sigmoid(x) * (1 + x * _mp_sigmoid(-x)),
    ),
    "softplus": (lambda x: mpmath.log1p(mpmath.exp(x)), _mp_sigmoid),
    "mish": (
        lambda x: x * mpmath.tanh(mpmath.log1p(mpmath.exp(x))),
        _mp_mish_derivative,
    ),
}


@pytest.mark.parametrize("name", sorted(MPMATH_RECTIFIERS))
def test_float64_value_and_derivative_match_mpmath(name):
    fn = RECTIFIERS[name][0]
    x = np.concatenate([np.linspace(-30, 30, 601), [-700.0, -100.0, 100.0, 1e300]])
    x = x[x != 0]
    with jax.enable_x64(True):
        inputs = jnp.asarray(x, dtype=jnp.float64)
        got = np.asarray(fn(inputs))
        got_derivative = np.asarray(A.derivative(fn)(inputs))
    value_reference, derivative_reference = MPMATH_RECTIFIERS[name]
    with mpmath.workdps(40):
        values = np.array([float(value_reference(mpmath.mpf(v))) for v in x])
        slopes = np.array([float(derivative_reference(mpmath.mpf(v))) for v in x])
    # GELU's rounded erfc argument costs x**2 ulps in the negative tail.
    bound = 1e-13 + (np.minimum(x, 0.0) ** 2 * 2.0**-52 if name == "gelu" else 0)
    finite = np.isfinite(values)
    np.testing.assert_array_less(
        np.abs(got - values)[finite], (bound * np.abs(values) + 1e-300)[finite]
    )
    np.testing.assert_array_less(
        np.abs(got_derivative - slopes), bound * np.abs(slopes) + 1e-300
    )


def test_relu_derivative_at_zero_is_zero():
    assert float(jax.grad(A.relu)(0.0)) == 0.0
    assert float(jax.grad(A.relu)(-0.0)) == 0.0


@pytest.mark.parametrize("name", sorted(KINKS))
def test_derivative_at_a_kink_is_a_one_sided_derivative_never_a_half(name):
    fn = RECTIFIERS[name][0]
    kinks, allowed = KINKS[name]
    got = np.asarray(A.derivative(fn)(jnp.array(kinks)))
    for kink, value, one_sided in zip(kinks, got, allowed, strict=True):
        assert value != 0.5, f"derivative 0.5 at the kink {kink}"
        assert any(np.isclose(value, side, rtol=1e-6) for side in one_sided), (
            f"derivative {value} at the kink {kink}, expected one of {one_sided}"
        )


@pytest.mark.parametrize(
    "fn, kink",
    [
        (A.hard_sigmoid, -3.0),
        (A.hard_sigmoid, 3.0),
        (A.hard_tanh, -1.0),
        (A.hard_tanh, 1.0),
        (A.relu6, 6.0),
    ],
)
def test_piecewise_linear_derivatives_are_never_a_half_at_their_kinks(fn, kink):
    value = float(jax.grad(fn)(kink))
    assert value != 0.5


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_limits_at_infinity_are_returned(name):
    fn = RECTIFIERS[name][0]
    got = np.asarray(fn(jnp.array([-jnp.inf, jnp.inf])), dtype=np.float64)
    np.testing.assert_allclose(got, LIMITS[name], rtol=1e-7)


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_agree_with_numerical_differences(name):
    fn = RECTIFIERS[name][0]
    with jax.enable_x64(True):
        x = jnp.linspace(-4.0, 4.0, 41, dtype=jnp.float64) + 0.0125
        check_grads(fn, (x,), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOOTH)
def test_second_derivatives_agree_with_numerical_differences(name):
    fn = RECTIFIERS[name][0]
    with jax.enable_x64(True):
        x = jnp.linspace(-4.0, 4.0, 41, dtype=jnp.float64) + 0.0125
        check_grads(fn, (x,), order=2, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize(
    "name", ["relu", "relu6", "leaky_relu", "elu_alpha2", "selu", "elu"]
)
def test_derivatives_agree_with_numerical_differences_away_from_kinks(name):
    fn = RECTIFIERS[name][0]
    with jax.enable_x64(True):
        x = jnp.array([-5.5, -2.5, -0.75, -0.25, 0.3, 0.8, 2.2, 4.5, 6.5])
        check_grads(fn, (x,), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize("fn", [A.elu, A.celu])
def test_alpha_gradient_matches_float64_closed_form(fn):
    x = np.linspace(-30.0, 5.0, 701, dtype=np.float32)
    alpha = 1.5
    got = jax.vmap(jax.grad(fn, argnums=1), in_axes=(0, None))(jnp.asarray(x), alpha)
    x64 = x.astype(np.float64)
    if fn is A.elu:
        terms = [np.where(x64 > 0, 0, np.expm1(np.minimum(x64, 0)))]
    else:
        scaled = np.minimum(x64, 0) / alpha
        terms = [np.expm1(scaled), -scaled * np.exp(scaled)]
        terms = [np.where(x64 > 0, 0, t) for t in terms]
    scale = np.sum(np.abs(terms), axis=0)
    _assert_error_within(x, got, np.sum(terms, axis=0), scale, "float32", 1e-6)


def test_swish_is_silu():
    assert A.swish is A.silu


def test_gelu_defaults_to_the_exact_form():
    x = jnp.array([-1.5, -0.5, 0.5, 1.5])
    exact = x * special.ndtr(np.asarray(x, dtype=np.float64))
    np.testing.assert_allclose(np.asarray(A.gelu(x)), exact, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(width=32, allow_nan=False), b=st.floats(width=32, allow_nan=False))
@pytest.mark.parametrize(
    "name", ["relu", "relu6", "leaky_relu", "elu", "selu", "celu_alpha0.5", "softplus"]
)
def test_monotone_rectifiers_are_non_decreasing(name, a, b):
    fn = RECTIFIERS[name][0]
    lo, hi = sorted([a, b])
    values = fn(jnp.array([lo, hi], dtype=jnp.float32))
    assert values[0] <= values[1]


@settings(max_examples=100, deadline=None)
@given(x=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_softplus_is_at_least_relu_and_at_most_relu_plus_log_2(x):
    y = float(A.softplus(jnp.float32(x)))
    relu = max(x, 0.0)
    assert relu <= y <= relu + np.log(2) * (1 + 1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh", 1, None])
def test_gelu_refuses_an_approximate_that_is_not_a_bool(approximate):
    # "none" is truthy: taken as a flag it would silently pick the tanh form.
    with pytest.raises(TypeError, match="approximate must be True"):
        A.gelu(jnp.ones(2), approximate=approximate)


def test_gelu_accepts_a_numpy_bool():
    got = A.gelu(jnp.array([1.0]), approximate=np.bool_(False))
    np.testing.assert_array_equal(got, A.gelu(jnp.array([1.0])))


@pytest.mark.parametrize(
    "alpha", [0.0, -1.0, np.inf, np.nan, np.array([1.0, 0.0]), jnp.array([-2.0])]
)
def test_celu_rejects_alpha_that_is_not_positive_and_finite(alpha):
    # alpha = 0 divides by zero (NaN at x = 0), a negative alpha makes the
    # derivative exp(x / alpha) overflow for negative x.
    with pytest.raises(ValueError, match=r"celu's alpha must be a positive.*got"):
        A.celu(jnp.array([-1.0, 0.0, 1.0]), alpha=alpha)


def test_celu_accepts_a_traced_alpha():
    got = jax.jit(A.celu)(jnp.array([-1.0, 2.0]), 2.0)
    np.testing.assert_allclose(got, [2 * np.expm1(-0.5), 2.0], rtol=1e-6)


def test_celu_alpha_gradient_at_negative_infinity_is_its_limit():
    # d/dalpha alpha (exp(x / alpha) - 1) = expm1(x / alpha) - (x / alpha)
    # exp(x / alpha), which tends to -1 as x -> -inf.
    alpha = 1.5
    x = np.array([-np.inf, -1e30, -200.0])
    got = jax.vmap(jax.grad(A.celu, argnums=1), in_axes=(0, None))(x, alpha)
    scaled = x[1:] / alpha
    expected = np.concatenate([[-1.0], np.expm1(scaled) - scaled * np.exp(scaled)])
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)


def test_leaky_relu_with_zero_slope_is_zero_at_minus_infinity():
    # A zero slope makes the function identically 0 for x < 0; the product
    # 0 * -inf must not leak a NaN into the value or either derivative.
    x = jnp.array([-jnp.inf, -3e38, -1.0, 0.0, 2.0, jnp.inf])
    np.testing.assert_array_equal(
        A.leaky_relu(x, 0.0), np.maximum(np.asarray(x, dtype=np.float64), 0)
    )
    dx = jax.vmap(jax.grad(A.leaky_relu), in_axes=(0, None))(x, 0.0)
    np.testing.assert_array_equal(dx, [0, 0, 0, 1, 1, 1])
    # d/da of a * x is x on the negative side and 0 on the other; at -inf the
    # zero slope's constant 0 is taken, not -inf * 0.
    da = jax.vmap(jax.grad(A.leaky_relu, argnums=1), in_axes=(0, None))(x, 0.0)
    wide = np.asarray(x[1:], dtype=np.float64)
    np.testing.assert_array_equal(da[1:], np.where(wide < 0, wide, 0))
    assert da[0] == 0
    # A positive slope keeps -inf.
    assert A.leaky_relu(jnp.array([-jnp.inf]), 0.25)[0] == -jnp.inf
