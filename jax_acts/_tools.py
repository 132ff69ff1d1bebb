"""Elementwise derivatives of activations and the registry that looks them up by
name."""

from collections.abc import Callable

import jax
from jax import Array
from jax.typing import ArrayLike

from jax_acts import _algebraic_sigmoids, _rectifiers, _sigmoid, _smooth_rectifiers
from jax_acts._dtypes import as_float

_REGISTRY: dict[str, Callable[..., Array]] = {
    "sigmoid": _sigmoid.sigmoid,
    "log_sigmoid": _sigmoid.log_sigmoid,
    "tanh": _sigmoid.tanh,
    "arctan": _sigmoid.arctan,
    "gudermannian": _sigmoid.gudermannian,
    "erf": _sigmoid.erf,
    "generalized_logistic": _sigmoid.generalized_logistic,
    "algebraic_sigmoid": _algebraic_sigmoids.algebraic_sigmoid,
    "soft_sign": _algebraic_sigmoids.soft_sign,
    "hard_sigmoid": _algebraic_sigmoids.hard_sigmoid,
    "hard_tanh": _algebraic_sigmoids.hard_tanh,
    "relu": _rectifiers.relu,
    "relu6": _rectifiers.relu6,
    "leaky_relu": _rectifiers.leaky_relu,
    "elu": _rectifiers.elu,
    "celu": _rectifiers.celu,
    "selu": _rectifiers.selu,
    "gelu": _smooth_rectifiers.gelu,
    "silu": _smooth_rectifiers.silu,
    "swish": _smooth_rectifiers.swish,
    "softplus": _smooth_rectifiers.softplus,
    "mish": _smooth_rectifiers.mish,
}


def names() -> tuple[str, ...]:
    """Names of every elementwise activation :func:`get` accepts, sorted.

    Returns:
      A tuple of strings; aliases (``swish`` for ``silu``) are included.

    Examples:
      >>> import jax_acts as A
      >>> "relu" in A.names() and "softmax" not in A.names()
      True
    """
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Callable[..., Array]:
    """Looks up an elementwise activation by name, with its default parameters.

    Args:
      name: one of :func:`names`, e.g. ``"relu"`` or ``"gelu"``.

    Returns:
      The activation function.

    Raises:
      ValueError: if ``name`` is unknown; the message lists the valid names.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.get("relu")(jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; expected one of: {', '.join(names())}"
        ) from None


def derivative(f: Callable[[Array], Array] | str) -> Callable[[ArrayLike], Array]:
    r"""Elementwise derivative :math:`f'(x)` of an elementwise activation.

    Built as ``jax.vmap(jax.grad(f))`` over the flattened input and reshaped back,
    so it applies whatever derivative rule ``f`` defines (the hand-written ones
    of this library included) and is jit-compiled.

    Args:
      f: an elementwise function of one array, such as :func:`sigmoid`, or its
        registry name. Bind extra parameters first, e.g. with
        ``functools.partial(leaky_relu, negative_slope=0.1)``.

    Returns:
      A jitted function mapping an array of any shape to the derivative at each
      element, same shape and float dtype (integers and bools are promoted).

    Raises:
      ValueError: for an unknown name, and (when called) if ``f`` is not
        elementwise; TypeError: if ``f`` is not callable.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.derivative(A.relu)(jnp.array([[-1.0, 0.0], [0.5, 2.0]]))
      Array([[0., 0.],
             [1., 1.]], dtype=float32)
      >>> A.derivative("sigmoid")(jnp.array([0.0, 30.0])) > 0
      Array([ True,  True], dtype=bool)
    """
    if isinstance(f, str):
        f = get(f)
    if not callable(f):
        raise TypeError(
            f"derivative expects a function or an activation name, got {f!r}"
        )
    elementwise_grad = jax.vmap(jax.grad(f))
    name = getattr(f, "__name__", repr(f))

    def not_elementwise(problem: str) -> ValueError:
        return ValueError(
            f"derivative needs an elementwise function, but {name} {problem}; for "
            "softmax use softmax_jacobian, for other functions jax.jacobian"
        )

    def flat_derivative(x: Array) -> Array:
        x = x.reshape(-1)
        # A reduction such as logsumexp would otherwise pass: its gradient at
        # each lone element is defined, but it is not the function's derivative.
        shape = jax.eval_shape(f, x).shape
        if shape != x.shape:
            raise not_elementwise(
                f"maps an array of shape {x.shape} to one of shape {shape}"
            )
        try:
            return elementwise_grad(x)
        except (TypeError, ValueError, IndexError) as err:
            raise not_elementwise(f"fails on a single element ({err})") from err

    @jax.jit
    def df(x: ArrayLike) -> Array:
        x = as_float(x)
        return flat_derivative(x).reshape(x.shape)

    df.__name__ = f"derivative_of_{getattr(f, '__name__', 'f')}"
    df.__doc__ = f"Elementwise derivative of {name}."
    return df
