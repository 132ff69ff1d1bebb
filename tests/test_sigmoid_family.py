"""Claims about the sigmoid family: values and derivatives against float64 and
mpmath references over each dtype's whole range, tails included; limits, bounds,
symmetries and agreement with autodiff."""

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

HALF_PI = np.pi / 2


def _expit_power(x, alpha):
    return special.expit(x) ** alpha


# name: (function, float64 value reference, float64 derivative reference).
# The references use formulas different from the library's where one exists.
FAMILY = {
    "sigmoid": (
        A.sigmoid,
        special.expit,
        lambda x: special.expit(x) * special.expit(-x),
    ),
    "log_sigmoid": (
        A.log_sigmoid,
        lambda x: -np.logaddexp(0, -x),
        lambda x: special.expit(-x),
    ),
    "tanh": (A.tanh, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    "arctan": (A.arctan, np.arctan, lambda x: 1 / (1 + x * x)),
    "gudermannian": (
        A.gudermannian,
        lambda x: np.arctan(np.sinh(x)),
        lambda x: 1 / np.cosh(x),
    ),
    "erf": (A.erf, special.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)),
    "algebraic_sigmoid": (
        A.algebraic_sigmoid,
        lambda x: x / np.sqrt(1 + x * x),
        lambda x: (1 + x * x) ** -1.5,
    ),
    "soft_sign": (
        A.soft_sign,
        lambda x: x / (1 + np.abs(x)),
        lambda x: 1 / (1 + np.abs(x)) ** 2,
    ),
    "hard_sigmoid": (
        A.hard_sigmoid,
        lambda x: np.clip((x + 3) / 6, 0, 1),
        lambda x: np.where(np.abs(x) < 3, 1 / 6, 0.0),
    ),
    "hard_tanh": (
        A.hard_tanh,
        lambda x: np.clip(x, -1, 1),
        lambda x: np.where(np.abs(x) <= 1, 1.0, 0.0),
    ),
}
for _alpha in (0.5, 1.0, 2.0, 4.0):
    FAMILY[f"generalized_logistic_alpha{_alpha}"] = (
        functools.partial(A.generalized_logistic, alpha=_alpha),
        functools.partial(_expit_power, alpha=_alpha),
        functools.partial(
            lambda x, a: a * special.expit(x) ** a * special.expit(-x), a=_alpha
        ),
    )

# name: (value, derivative) in mpmath, for float64 inputs.
MPMATH_FAMILY = {
    "sigmoid": (
        lambda x: 1 / (1 + mpmath.exp(-x)),
        lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2,
    ),
    "log_sigmoid": (
        lambda x: -mpmath.log1p(mpmath.exp(-x)),
        lambda x: 1 / (1 + mpmath.exp(x)),
    ),
    "tanh": (mpmath.tanh, lambda x: mpmath.sech(x) ** 2),
    "arctan": (mpmath.atan, lambda x: 1 / (1 + x * x)),
    "gudermannian": (lambda x: 2 * mpmath.atan(mpmath.tanh(x / 2)), mpmath.sech),
    "erf": (mpmath.erf, lambda x: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)),
    "algebraic_sigmoid": (
        lambda x: x / mpmath.sqrt(1 + x * x),
        lambda x: (1 + x * x) ** mpmath.mpf(-1.5),
    ),
    "soft_sign": (lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
    "generalized_logistic_alpha2.0": (
        lambda x: (1 + mpmath.exp(-x)) ** -2,
        lambda x: 2 * (1 + mpmath.exp(-x)) ** -3 * mpmath.exp(-x),
    ),
}

# The claim: relative error at most this, wherever the true value is normal.
BOUNDS = {"float32": 1e-6, "float16": 1e-2, "bfloat16": 1e-2}
FLOAT64_BOUND = 1e-13

SMOOTH = [
    "sigmoid",
    "log_sigmoid",
    "tanh",
    "arctan",
    "gudermannian",
    "erf",
    "algebraic_sigmoid",
    "generalized_logistic_alpha2.0",
]

ODD = ["tanh", "arctan", "gudermannian", "erf", "algebraic_sigmoid", "soft_sign"]
ODD += ["hard_tanh"]

# name: (limit at -inf, limit at +inf).
LIMITS = {
    "sigmoid": (0.0, 1.0),
    "log_sigmoid": (-np.inf, 0.0),
    "tanh": (-1.0, 1.0),
    "arctan": (-HALF_PI, HALF_PI),
    "gudermannian": (-HALF_PI, HALF_PI),
    "erf": (-1.0, 1.0),
    "algebraic_sigmoid": (-1.0, 1.0),
    "soft_sign": (-1.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "generalized_logistic_alpha2.0": (0.0, 1.0),
}

finite_float32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
any_float32 = st.floats(width=32, allow_nan=False)


def _assert_relative_error_within(x, got, reference, dtype, bound):
    """Relative error <= bound where the reference is normal in ``dtype``, and an
    absolute error below the smallest normal where it is not."""
    finfo = jnp.finfo(dtype)
    got = np.asarray(got, dtype=np.float64)
    magnitude = np.abs(reference)
    normal = (magnitude >= float(finfo.smallest_normal)) & (
        magnitude <= float(finfo.max)
    )
    error = np.abs(got - reference)
    relative = np.where(normal, error / np.where(normal, magnitude, 1), 0.0)
    ok_normal = relative <= bound
    ok_tiny = normal | (error <= float(finfo.smallest_normal))
    bad = ~(ok_normal & ok_tiny)
    if bad.any():
        worst = np.nanargmax(np.where(bad, np.nan_to_num(relative, nan=np.inf), -1))
        raise AssertionError(
            f"{bad.sum()} of {x.size} inputs out of bound {bound}; worst at "
            f"x={x[worst]!r}: got {got[worst]!r}, reference {reference[worst]!r}"
        )


def _normal_or_zero(x):
    """Drops subnormal inputs, which XLA flushes to zero before any arithmetic."""
    tiny = float(jnp.finfo(x.dtype).smallest_normal)
    return x[(x == 0) | (np.abs(x.astype(np.float64)) >= tiny)]


def _float64_reference(fn, x):
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return fn(np.asarray(x, dtype=np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_value_is_within_bound_of_float64_reference_over_whole_range(
    name, dtype, finite_grid
):
    fn, value_reference, _ = FAMILY[name]
    x = _normal_or_zero(finite_grid(dtype))
    got = fn(jnp.asarray(x))
    assert got.dtype == jnp.dtype(dtype)
    reference = _float64_reference(value_reference, x)
    _assert_relative_error_within(x, got, reference, dtype, BOUNDS[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_derivative_is_within_bound_of_float64_reference_over_whole_range(
    name, dtype, finite_grid
):
    fn, _, derivative_reference = FAMILY[name]
    x = _normal_or_zero(finite_grid(dtype))
    got = A.derivative(fn)(jnp.asarray(x))
    assert got.dtype == jnp.dtype(dtype)
    reference = _float64_reference(derivative_reference, x)
    _assert_relative_error_within(x, got, reference, dtype, BOUNDS[dtype])


def _float64_points():
    magnitudes = np.geomspace(1e-300, 1e300, 121)
    return np.concatenate([np.linspace(-760, 760, 761), magnitudes, -magnitudes])


def _mpmath_reference(fn, x):
    with mpmath.workdps(40):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in x])


@pytest.mark.parametrize("name", sorted(MPMATH_FAMILY))
def test_float64_value_and_derivative_match_mpmath(name):
    fn = FAMILY[name][0]
    value_reference, derivative_reference = MPMATH_FAMILY[name]
    x = _float64_points()
    with jax.enable_x64(True):
        inputs = jnp.asarray(x, dtype=jnp.float64)
        got = np.asarray(fn(inputs))
        got_derivative = np.asarray(A.derivative(fn)(inputs))
    _assert_relative_error_within(
        x, got, _mpmath_reference(value_reference, x), "float64", FLOAT64_BOUND
    )
    _assert_relative_error_within(
        x,
        got_derivative,
        _mpmath_reference(derivative_reference, x),
        "float64",
        FLOAT64_BOUND,
    )


@pytest.mark.parametrize("name", SMOOTH)
def test_hand_written_derivatives_agree_with_numerical_differences(name):
    fn = FAMILY[name][0]
    with jax.enable_x64(True):
        x = jnp.linspace(-4.0, 4.0, 41, dtype=jnp.float64) + 0.0125
        check_grads(fn, (x,), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOOTH)
def test_second_derivatives_agree_with_numerical_differences(name):
    fn = FAMILY[name][0]
    with jax.enable_x64(True):
        x = jnp.linspace(-4.0, 4.0, 41, dtype=jnp.float64) + 0.0125
        check_grads(fn, (x,), order=2, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize("name", ["soft_sign", "hard_sigmoid", "hard_tanh"])
def test_piecewise_derivatives_agree_with_numerical_differences_away_from_kinks(
    name,
):
    fn = FAMILY[name][0]
    with jax.enable_x64(True):
        x = jnp.array([-5.5, -2.5, -0.75, -0.25, 0.3, 0.8, 2.2, 4.5])
        check_grads(fn, (x,), order=1, modes=["fwd", "rev"], eps=1e-4)


def test_generalized_logistic_alpha_gradient_matches_float64_closed_form():
    x = np.linspace(-60.0, 60.0, 2401, dtype=np.float32)
    # Exactly representable, so the reference sees the same alpha as float32 does.
    alpha = 1.6875
    grad_alpha = jax.vmap(
        jax.grad(A.generalized_logistic, argnums=1), in_axes=(0, None)
    )(jnp.asarray(x), alpha)
    x64 = x.astype(np.float64)
    reference = special.expit(x64) ** alpha * -np.logaddexp(0, -x64)
    _assert_relative_error_within(x, grad_alpha, reference, "float32", 1e-6)


@pytest.mark.parametrize(
    "alpha",
    [0.0, -1.0, np.float32(-1.0), jnp.array(-1.0), np.array([1.0, 0.0]), np.inf,
     np.nan],
    ids=["zero", "negative", "numpy_scalar", "jax_scalar", "array_with_zero", "inf",
         "nan"],
)  # fmt: skip
def test_generalized_logistic_rejects_alpha_that_is_not_positive_and_finite(alpha):
    with pytest.raises(ValueError, match="alpha must be a positive finite number"):
        A.generalized_logistic(jnp.ones(3), alpha=alpha)


def test_generalized_logistic_accepts_a_traced_alpha():
    # Under jit alpha is abstract and cannot be checked; it must still run.
    values = jax.jit(A.generalized_logistic)(jnp.zeros(2), jnp.array(2.0))
    np.testing.assert_allclose(values, 0.25, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_limits_at_infinity_are_returned(name):
    fn = FAMILY[name][0]
    low, high = LIMITS[name]
    got = np.asarray(fn(jnp.array([-jnp.inf, jnp.inf])), dtype=np.float64)
    np.testing.assert_allclose(got, [low, high], rtol=1e-7)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_derivative_at_infinity_is_zero(name):
    fn = FAMILY[name][0]
    got = np.asarray(A.derivative(fn)(jnp.array([-jnp.inf, jnp.inf])))
    expected = [1.0, 0.0] if name == "log_sigmoid" else [0.0, 0.0]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_nan_input_gives_nan_value(name):
    fn = FAMILY[name][0]
    assert np.isnan(fn(jnp.array([jnp.nan]))).all()


@pytest.mark.parametrize("name", sorted(LIMITS))
@settings(max_examples=60, deadline=None)
@given(x=any_float32)
def test_values_stay_within_the_range_between_the_limits(name, x):
    fn = FAMILY[name][0]
    low, high = LIMITS[name]
    y = float(fn(jnp.float32(x)))
    # The limits are compared after rounding to float32, as the outputs are.
    assert float(np.float32(low)) <= y <= float(np.float32(high))


@pytest.mark.parametrize("name", sorted(FAMILY))
@settings(max_examples=60, deadline=None)
@given(a=any_float32, b=any_float32)
def test_is_monotonically_non_decreasing(name, a, b):
    fn = FAMILY[name][0]
    lo, hi = sorted([a, b])
    values = fn(jnp.array([lo, hi], dtype=jnp.float32))
    assert values[0] <= values[1]


@pytest.mark.parametrize("name", ODD)
@settings(max_examples=60, deadline=None)
@given(x=any_float32)
def test_odd_functions_are_exactly_odd(name, x):
    fn = FAMILY[name][0]
    values = fn(jnp.array([x, -x], dtype=jnp.float32))
    assert values[1] == -values[0]


@settings(max_examples=100, deadline=None)
@given(x=finite_float32)
def test_sigmoid_of_negative_is_one_minus_sigmoid(x):
    values = np.asarray(A.sigmoid(jnp.array([x, -x], dtype=jnp.float32)), np.float64)
    assert abs(values[1] - (1 - values[0])) <= 2**-23


@settings(max_examples=100, deadline=None)
@given(x=finite_float32)
def test_generalized_logistic_with_alpha_one_is_sigmoid(x):
    ours = float(A.generalized_logistic(jnp.float32(x), alpha=1.0))
    expected = float(A.sigmoid(jnp.float32(x)))
    assert ours == pytest.approx(expected, rel=3e-7, abs=1e-45)


@settings(max_examples=100, deadline=None)
@given(x=st.floats(-80, 80, width=32))
def test_derivative_of_sigmoid_is_at_most_one_quarter(x):
    assert float(jax.grad(A.sigmoid)(jnp.float32(x))) <= 0.25
