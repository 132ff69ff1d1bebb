"""Claims about the tools: the name registry, and derivative() against
elementwise jax.grad for arrays of any shape."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_acts as A

ELEMENTWISE = [
    "algebraic_sigmoid",
    "arctan",
    "celu",
    "elu",
    "erf",
    "gelu",
    "generalized_logistic",
    "gudermannian",
    "hard_sigmoid",
    "hard_tanh",
    "leaky_relu",
    "log_sigmoid",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_sign",
    "softplus",
    "swish",
    "tanh",
]


def test_names_lists_every_elementwise_activation_sorted():
    assert A.names() == tuple(ELEMENTWISE)


def test_names_excludes_the_normalisers():
    assert not {"softmax", "log_softmax", "logsumexp"} & set(A.names())


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_get_returns_the_public_function_of_that_name(name):
    assert A.get(name) is getattr(A, name)


def test_get_rejects_an_unknown_name_naming_it_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"'relu7'.*gelu.*tanh"):
        A.get("relu7")


def test_get_rejects_a_non_string_name():
    with pytest.raises(ValueError, match="unknown activation"):
        A.get(3)


def _grad_per_element(fn, x):
    flat = [float(jax.grad(fn)(jnp.float32(v))) for v in np.ravel(x)]
    return np.array(flat, dtype=np.float32).reshape(np.shape(x))


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 3)])
def test_derivative_matches_jax_grad_element_by_element(shape):
    x = np.linspace(-3, 3, int(np.prod(shape))).astype(np.float32).reshape(shape)
    got = np.asarray(A.derivative(A.silu)(jnp.asarray(x)))
    assert got.shape == shape
    np.testing.assert_array_equal(got, _grad_per_element(A.silu, x))


def test_derivative_of_an_empty_array_is_empty():
    got = A.derivative(A.tanh)(jnp.zeros((0, 3)))
    assert got.shape == (0, 3)


def test_derivative_accepts_a_registry_name():
    x = jnp.linspace(-2.0, 2.0, 9)
    np.testing.assert_array_equal(
        np.asarray(A.derivative("sigmoid")(x)), np.asarray(A.derivative(A.sigmoid)(x))
    )


def test_derivative_uses_bound_parameters():
    slope = 0.2
    got = A.derivative(functools.partial(A.leaky_relu, negative_slope=slope))(
        jnp.array([-1.0, 1.0])
    )
    np.testing.assert_allclose(np.asarray(got), [slope, 1.0], rtol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_derivative_preserves_the_floating_dtype(dtype):
    assert A.derivative(A.sigmoid)(jnp.ones(3, dtype=dtype)).dtype == dtype


def test_derivative_promotes_integer_input():
    got = A.derivative(A.relu)(jnp.array([-1, 0, 2]))
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(got), [0.0, 0.0, 1.0])


def test_derivative_rejects_something_that_is_not_a_function():
    with pytest.raises(TypeError, match="function or an activation name"):
        A.derivative(3.0)


@pytest.mark.parametrize(
    ("fn", "problem"),
    [
        (A.logsumexp, r"maps an array of shape \(3,\) to one of shape \(\)"),
        (A.softmax_jacobian, r"to one of shape \(3, 3\)"),
        (A.softmax, "fails on a single element"),
        (A.log_softmax, "fails on a single element"),
    ],
)
def test_derivative_refuses_a_function_that_is_not_elementwise(fn, problem):
    with pytest.raises(ValueError, match="needs an elementwise function") as info:
        A.derivative(fn)(jnp.ones(3))
    assert info.match(problem)
    assert info.match("softmax_jacobian")


def test_derivative_is_a_jitted_function():
    df = A.derivative(A.tanh)
    assert hasattr(df, "lower")


def _defaults(fn):
    parameters = list(inspect.signature(fn).parameters.values())[1:]
    return {p.name: p.default for p in parameters if p.default is not p.empty}


SHARED_WITH_JAX_NN = sorted(
    name
    for name in [*ELEMENTWISE, "softmax", "log_softmax", "logsumexp"]
    if hasattr(jax.nn, name)
)


@pytest.mark.parametrize("name", SHARED_WITH_JAX_NN)
def test_parameters_shared_with_jax_nn_have_the_same_defaults(name):
    ours, theirs = _defaults(getattr(A, name)), _defaults(getattr(jax.nn, name))
    shared = sorted(set(ours) & set(theirs))
    differing = {k: (ours[k], theirs[k]) for k in shared if ours[k] != theirs[k]}
    # The one deliberate exception: gelu defaults to the exact form.
    expected = {"approximate": (False, True)} if name == "gelu" else {}
    assert differing == expected
