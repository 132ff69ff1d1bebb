"""Sigmoids built from arithmetic alone: the algebraic sigmoid and soft sign,
finite at infinity, and the piecewise-linear hard sigmoid and hard tanh with fixed
conventions at their kinks."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import lift


@jax.custom_jvp
def _algebraic_sigmoid(x: Array) -> Array:
    big = jnp.abs(x) > 1
    # 1/x keeps x^2 from overflowing; each branch sees a harmless input.
    inv = 1 / jnp.where(big, x, 1)
    small_form = x / jnp.sqrt(1 + x * jnp.where(big, 0, x))
    big_form = jnp.sign(x) / jnp.sqrt(1 + inv * inv)
    return jnp.where(big, big_form, small_form)


@_algebraic_sigmoid.defjvp
def _algebraic_sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    # Clamped where the true derivative already rounds to 0, so w stays finite.
    limit = np.sqrt(np.finfo(x.dtype).max) / 2
    a = jnp.minimum(jnp.abs(x), limit)
    w = 1 + a * a
    return _algebraic_sigmoid(x), 1 / jnp.sqrt(w) / w * x_dot


@jax.jit
def algebraic_sigmoid(x: ArrayLike) -> Array:
    r"""Algebraic sigmoid :math:`x / \sqrt{1 + x^2}`, odd with range (-1, 1).

    .. math::
        f(x) = \frac{x}{\sqrt{1 + x^2}}, \qquad f'(x) = (1 + x^2)^{-3/2}

    The forward value switches to :math:`\operatorname{sign}(x)/\sqrt{1 + x^{-2}}`
    for :math:`|x| > 1`, so :math:`x^2` never overflows (the plain formula gives
    0 for :math:`|x| > 2 \cdot 10^{19}` in float32 and NaN at infinity). The
    derivative is written by hand; autodiff of the quotient subtracts two nearly
    equal terms.

    Edge behaviour: ``f(±inf) == ±1`` with derivative 0.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.algebraic_sigmoid(jnp.array([-jnp.inf, 0.0, 1.0, 3e38])))
      [-1.      0.      0.7071  1.    ]
    """
    return lift(_algebraic_sigmoid, x)


@jax.custom_jvp
def _soft_sign(x: Array) -> Array:
    # Clipping infinities to the largest finite value gives exactly ±1 there,
    # instead of inf / inf.
    big = np.finfo(x.dtype).max
    x = jnp.clip(x, -big, big)
    return x / (1 + jnp.abs(x))


@_soft_sign.defjvp
def _soft_sign_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    q = 1 / (1 + jnp.abs(x))
    return _soft_sign(x), q * q * x_dot


@jax.jit
def soft_sign(x: ArrayLike) -> Array:
    r"""Soft sign :math:`x / (1 + |x|)`, odd with range (-1, 1).

    .. math::
        f(x) = \frac{x}{1 + |x|}, \qquad f'(x) = \frac{1}{(1 + |x|)^2}

    The derivative is written by hand: autodiff of the quotient gives
    :math:`\frac{1}{1+|x|} - \frac{|x|}{(1+|x|)^2}`, two nearly equal terms whose
    difference loses most digits for large :math:`|x|`.

    Edge behaviour: ``soft_sign(±inf) == ±1`` (``jax.nn.soft_sign(inf)`` is NaN),
    derivative 0 there.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.soft_sign(jnp.array([-jnp.inf, -1.0, 0.0, 3.0, jnp.inf]))
      Array([-1.  , -0.5 ,  0.  ,  0.75,  1.  ], dtype=float32)
    """
    return lift(_soft_sign, x)


@jax.custom_jvp
def _hard_sigmoid(x: Array) -> Array:
    # A product with 1/6 instead of a division: within 2 ulps and much cheaper.
    return jnp.clip(x + 3, 0, 6) * np.asarray(1 / 6, dtype=x.dtype)


@_hard_sigmoid.defjvp
def _hard_sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    inside = (x > -3) & (x < 3)
    return _hard_sigmoid(x), jnp.where(inside, x_dot / 6, 0)


@jax.jit
def hard_sigmoid(x: ArrayLike) -> Array:
    r"""Hard sigmoid, the piecewise-linear sigmoid of ``jax.nn.hard_sigmoid``.

    .. math::
        f(x) = \frac{\min(\max(x + 3, 0), 6)}{6}

    The derivative is 1/6 on the open interval (-3, 3) and 0 elsewhere,
    including both kinks (the convention of ``jax.nn.relu6``; autodiff of
    ``clip`` would give 1/12 there).

    Edge behaviour: ``hard_sigmoid(-inf) == 0``, ``hard_sigmoid(inf) == 1``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.hard_sigmoid(jnp.array([-4.0, -3.0, 0.0, 1.5, 3.0]))
      Array([0.  , 0.  , 0.5 , 0.75, 1.  ], dtype=float32)

    See also:
      :func:`relu6`, :func:`hard_tanh`
    """
    return lift(_hard_sigmoid, x)


@jax.custom_jvp
def _hard_tanh(x: Array) -> Array:
    return jnp.clip(x, -1, 1)


@_hard_tanh.defjvp
def _hard_tanh_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    inside = (x >= -1) & (x <= 1)
    return _hard_tanh(x), jnp.where(inside, x_dot, 0)


@jax.jit
def hard_tanh(x: ArrayLike) -> Array:
    r"""Hard tanh, :math:`x` clipped to [-1, 1], as in ``jax.nn.hard_tanh``.

    .. math::
        f(x) = \max(-1, \min(x, 1))

    The derivative is 1 on the closed interval [-1, 1] and 0 outside, the value
    autodiff of ``jax.nn.hard_tanh`` gives at the kinks (autodiff of ``clip``
    would give 1/2 there, so the rule is written by hand).

    Edge behaviour: ``hard_tanh(±inf) == ±1``; NaN propagates.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.hard_tanh(jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0]))
      Array([-1. , -0.5,  0. ,  0.5,  1. ], dtype=float32)
    """
    return lift(_hard_tanh, x)
