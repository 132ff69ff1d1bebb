"""Claims every elementwise activation must meet: finite derivatives for every
finite input, dtype preservation and promotion, NaN propagation, and agreement
of jit, eager and vmap evaluation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import jax_acts as A

NAMES = A.names()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_derivative_is_finite_for_every_finite_input(name, dtype, finite_grid):
    x = finite_grid(dtype)
    got = np.asarray(A.derivative(A.get(name))(jnp.asarray(x)), dtype=np.float64)
    bad = ~np.isfinite(got)
    assert not bad.any(), f"non-finite derivative at x={x[bad][:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_derivative_is_finite_at_the_largest_float32_magnitudes(name):
    x = jnp.array([-3.4028235e38, -3e38, -1e38, 1e38, 3e38, 3.4028235e38])
    got = np.asarray(A.derivative(A.get(name))(x))
    assert np.isfinite(got).all(), got


@pytest.mark.parametrize("name", NAMES)
def test_derivative_at_infinity_is_its_limit_not_nan(name):
    # Every activation here has a constant slope far out on each side; the
    # derivative at ±inf is that slope, not inf * 0.
    x = jnp.array([-jnp.inf, -1e30, jnp.inf, 1e30])
    got = np.asarray(A.derivative(A.get(name))(x))
    assert np.isfinite(got).all(), got
    np.testing.assert_array_equal(got[[0, 2]], got[[1, 3]])


def test_tanh_gelu_derivative_at_infinity_is_its_limit():
    x = jnp.array([-jnp.inf, jnp.inf])
    got = A.derivative(lambda v: A.gelu(v, approximate=True))(x)
    np.testing.assert_array_equal(got, [0.0, 1.0])


@pytest.mark.parametrize("name", NAMES)
def test_value_is_never_nan_for_infinite_input(name):
    got = np.asarray(A.get(name)(jnp.array([-jnp.inf, jnp.inf])))
    assert not np.isnan(got).any(), got


@pytest.mark.parametrize("name", NAMES)
def test_nan_input_gives_nan(name):
    assert np.isnan(np.asarray(A.get(name)(jnp.array([jnp.nan])))).all()


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("name", NAMES)
def test_floating_dtype_is_preserved(name, dtype):
    assert A.get(name)(jnp.ones((2, 3), dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_float64_is_preserved_when_enabled(name):
    with jax.enable_x64(True):
        assert A.get(name)(jnp.ones(3, dtype=jnp.float64)).dtype == jnp.float64


@pytest.mark.parametrize("name", NAMES)
def test_integer_and_bool_inputs_are_promoted_to_the_default_float(name):
    fn = A.get(name)
    ints = fn(jnp.array([-2, 0, 3]))
    assert ints.dtype == jnp.float32
    np.testing.assert_array_equal(
        np.asarray(ints), np.asarray(fn(jnp.array([-2.0, 0.0, 3.0])))
    )
    assert fn(jnp.array([True, False])).dtype == jnp.float32


def test_integer_input_is_promoted_to_float64_when_enabled():
    with jax.enable_x64(True):
        assert A.sigmoid(jnp.array([1, 2])).dtype == jnp.float64


def test_complex_input_is_rejected_naming_the_dtype():
    with pytest.raises(TypeError, match="complex64"):
        A.sigmoid(jnp.array([1 + 1j]))


def _sample():
    return jnp.asarray(np.linspace(-6, 6, 24, dtype=np.float32).reshape(4, 6))


@pytest.mark.parametrize("name", NAMES)
def test_jit_eager_and_vmap_agree(name):
    fn = A.get(name)
    x = _sample()
    compiled = np.asarray(jax.jit(fn)(x))
    with jax.disable_jit():
        eager = np.asarray(fn(x))
    mapped = np.asarray(jax.vmap(fn)(x))
    np.testing.assert_allclose(eager, compiled, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mapped, compiled, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_jit_eager_and_vmap_derivatives_agree(name):
    fn = A.get(name)
    x = _sample()
    grad = jax.grad(lambda v: jnp.sum(fn(v)))
    compiled = np.asarray(jax.jit(grad)(x))
    with jax.disable_jit():
        eager = np.asarray(grad(x))
    mapped = np.asarray(jax.vmap(jax.vmap(jax.grad(fn)))(x))
    np.testing.assert_allclose(eager, compiled, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mapped, compiled, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn", [A.softmax, A.log_softmax, A.logsumexp])
def test_normalisers_agree_under_jit_eager_and_vmap(fn):
    x = _sample()
    compiled = np.asarray(jax.jit(lambda v: fn(v, axis=-1))(x))
    with jax.disable_jit():
        eager = np.asarray(fn(x, axis=-1))
    mapped = np.asarray(jax.vmap(lambda row: fn(row, axis=-1))(x))
    np.testing.assert_allclose(eager, compiled, rtol=1e-6)
    np.testing.assert_allclose(mapped, compiled, rtol=1e-6)


# Float64 references, independent of the library, for a few activations whose
# float8 evaluation used to fail (NaN, or no erfc kernel at all).
_FLOAT8_REFERENCES = {
    "sigmoid": (
        A.sigmoid,
        special.expit,
        lambda x: special.expit(x) * special.expit(-x),
    ),
    "tanh": (A.tanh, np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    "erf": (
        A.erf,
        special.erf,
        lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x),
    ),
    "gelu": (A.gelu, lambda x: x * special.ndtr(x), None),
    "silu": (A.silu, lambda x: x * special.expit(x), None),
    "mish": (A.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), None),
    "softplus": (A.softplus, lambda x: np.logaddexp(0, x), special.expit),
}


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
@pytest.mark.parametrize("name", sorted(_FLOAT8_REFERENCES))
def test_float8_inputs_are_computed_in_float32(name, dtype):
    # Every finite value of the type; the result may differ from the float64
    # reference by the rounding of the output alone.
    dtype = jnp.dtype(dtype)
    x8 = np.arange(256, dtype=np.uint8).view(dtype)
    x8 = x8[np.isfinite(x8.astype(np.float32))]
    x = x8.astype(np.float64)
    fn, value, slope = _FLOAT8_REFERENCES[name]
    finfo = jnp.finfo(dtype)
    tolerance = dict(rtol=float(finfo.eps), atol=float(finfo.smallest_subnormal))
    got = fn(jnp.asarray(x8))
    assert got.dtype == dtype
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(np.asarray(got, np.float64), value(x), **tolerance)
        if slope is not None:
            got_slope = np.asarray(A.derivative(fn)(jnp.asarray(x8)), np.float64)
            np.testing.assert_allclose(got_slope, slope(x), **tolerance)


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_softmax_is_computed_in_float32(dtype):
    x8 = np.array([-400.0, -10.0, -1.0, 0.0, 1.0, 10.0, 400.0]).astype(dtype)
    expected = special.softmax(x8.astype(np.float64))
    got = A.softmax(jnp.asarray(x8))
    assert got.dtype == jnp.dtype(dtype)
    finfo = jnp.finfo(dtype)
    np.testing.assert_allclose(
        np.asarray(got, np.float64),
        expected,
        rtol=float(finfo.eps),
        atol=float(finfo.smallest_subnormal),
    )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", [*NAMES, "gelu_tanh"])
def test_second_derivative_is_finite_for_every_finite_input(name, dtype, finite_grid):
    if name == "gelu_tanh":
        fn = functools.partial(A.gelu, approximate=True)
    else:
        fn = A.get(name)
    x = finite_grid(dtype)
    got = np.asarray(A.derivative(A.derivative(fn))(jnp.asarray(x)), np.float64)
    bad = ~np.isfinite(got)
    assert not bad.any(), f"non-finite second derivative at x={x[bad][:5]}"


def test_arctan_second_derivative_matches_closed_form_for_huge_inputs():
    # Finite everywhere; accurate where (1 + x^2)^2 does not overflow, and 0
    # where the true value is below the smallest normal float32.
    x = np.array([-3.4e38, -1e30, -10.0, 1.0, 1e5, 1e18, 1e30, 3.4e38])
    x = x.astype(np.float32)
    wide = x.astype(np.float64)
    expected = -2 * wide / (1 + wide * wide) ** 2
    got = np.asarray(A.derivative(A.derivative(A.arctan))(jnp.asarray(x)))
    tiny = float(np.finfo(np.float32).tiny)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=tiny)


@pytest.mark.parametrize("name", NAMES)
def test_forward_mode_derivative_at_infinity_matches_reverse_mode(name):
    # Forward mode also carries the tangent of fixed parameters (zero), so a
    # parameter derivative that is inf * 0 at infinity must not leak into it.
    fn = A.get(name)
    x = jnp.array([-jnp.inf, -3e38, -1.0, 0.0, 1.0, 3e38, jnp.inf])
    forward = np.diag(np.asarray(jax.jacfwd(fn)(x)))
    reverse = np.diag(np.asarray(jax.jacrev(fn)(x)))
    assert np.isfinite(forward).all(), forward
    np.testing.assert_array_equal(forward, reverse)
