"""Rectified linear units and the exponential linear family, with conventions
fixed at the kinks and derivatives accurate in the negative tail."""

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import check_positive, lift

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@jax.custom_jvp
def _relu(x: Array) -> Array:
    return jnp.maximum(x, 0)


@_relu.defjvp
def _relu_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _relu(x), jnp.where(x > 0, x_dot, 0)


@jax.jit
def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    .. math::
        \operatorname{relu}(x) = \max(x, 0), \qquad
        \operatorname{relu}'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    The derivative at 0 is 0, as in ``jax.nn.relu`` (see Bertoin et al.,
    "Numerical influence of ReLU'(0) on backpropagation", NeurIPS 2021); autodiff
    of ``maximum`` would split the tie and give 0.5.

    Edge behaviour: ``relu(-inf) == 0``, ``relu(inf) == inf``; NaN propagates.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp, jax_acts as A
      >>> A.relu(jnp.array([-2.0, 0.0, 1.5]))
      Array([0. , 0. , 1.5], dtype=float32)
      >>> float(jax.grad(A.relu)(0.0))
      0.0

    See also:
      :func:`relu6`, :func:`leaky_relu`
    """
    return lift(_relu, x)


@jax.custom_jvp
def _relu6(x: Array) -> Array:
    return jnp.clip(x, 0, 6)


@_relu6.defjvp
def _relu6_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _relu6(x), jnp.where((x > 0) & (x < 6), x_dot, 0)


@jax.jit
def relu6(x: ArrayLike) -> Array:
    r"""ReLU capped at 6.

    .. math::
        \operatorname{relu6}(x) = \min(\max(x, 0), 6)

    The derivative is 1 on the open interval (0, 6) and 0 elsewhere, including
    both kinks, as in ``jax.nn.relu6``.

    Edge behaviour: ``relu6(-inf) == 0``, ``relu6(inf) == 6``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.relu6(jnp.array([-1.0, 3.0, 7.0, jnp.inf]))
      Array([0., 3., 6., 6.], dtype=float32)
    """
    return lift(_relu6, x)


def _leaky_relu(x: Array, negative_slope: Array) -> Array:
    # A zero slope makes the function 0 for every negative input, so its limit
    # at -inf is 0, not 0 * -inf = NaN; the infinity is replaced before the
    # product, so no derivative sees it either.
    x_neg = jnp.where(jnp.isinf(x) & (negative_slope == 0), 0, x)
    return jnp.where(x >= 0, x, negative_slope * x_neg)


@jax.jit
def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky ReLU.

    .. math::
        f(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases}

    where :math:`a` is ``negative_slope``. Autodiff of the ``where`` gives the
    derivative 1 at 0 (the branch ``x >= 0``), as in ``jax.nn.leaky_relu``.

    Edge behaviour: ``leaky_relu(inf) == inf``; ``leaky_relu(-inf)`` is
    ``-inf`` for a positive slope and its limit 0 for a zero slope.

    Args:
      x: input array of any shape (integers and bools are promoted).
      negative_slope: slope for negative inputs, scalar or broadcastable array
        (default 0.01).

    Returns:
      An array of the broadcast shape and the float dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.leaky_relu(jnp.array([-2.0, 0.0, 3.0]), negative_slope=0.25)
      Array([-0.5,  0. ,  3. ], dtype=float32)
    """
    return lift(_leaky_relu, x, negative_slope)


@jax.custom_jvp
def _elu(x: Array, alpha: Array) -> Array:
    # Double where: the untaken expm1 branch sees 0, so it cannot overflow.
    negative_part = jnp.where(x > 0, 0, x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(negative_part))


@_elu.defjvp
def _elu_jvp(primals, tangents):
    (x, alpha), (x_dot, alpha_dot) = primals, tangents
    positive = x > 0
    negative_part = jnp.where(positive, 0, x)
    expm1 = jnp.expm1(negative_part)
    y = jnp.where(positive, x, alpha * expm1)
    # exp directly: autodiff's expm1(x) + 1 cancels to 0 below x = -17 in float32.
    dy_dx = jnp.where(positive, 1, alpha * jnp.exp(negative_part))
    dy_dalpha = jnp.where(positive, 0, expm1)
    return y, dy_dx * x_dot + dy_dalpha * alpha_dot


@jax.jit
def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit.

    .. math::
        \operatorname{elu}(x) = \begin{cases} x & x > 0 \\
            \alpha (e^x - 1) & x \le 0 \end{cases}

    The derivative is written by hand as :math:`\alpha e^x` for :math:`x \le 0`:
    autodiff of ``expm1`` forms :math:`\operatorname{expm1}(x) + 1`, which is
    exactly 0 below :math:`x \approx -17` in float32. At 0 the derivative is
    :math:`\alpha` (the left branch), equal to the right derivative 1 for the
    default alpha; it is never a half-way value.

    Edge behaviour: ``elu(-inf) == -alpha``, ``elu(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).
      alpha: scale of the negative saturation (default 1.0), differentiable.

    Returns:
      An array of the broadcast shape and the float dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.elu(jnp.array([-jnp.inf, -1.0, 0.0, 2.0])))
      [-1.     -0.6321  0.      2.    ]

    See also:
      :func:`selu`, :func:`celu`
    """
    return lift(_elu, x, alpha)


@jax.custom_jvp
def _celu(x: Array, alpha: Array) -> Array:
    negative_part = jnp.where(x > 0, 0, x)
    # One division per call instead of one per element.
    return jnp.where(x > 0, x, alpha * jnp.expm1(negative_part * (1 / alpha)))


@_celu.defjvp
def _celu_jvp(primals, tangents):
    (x, alpha), (x_dot, alpha_dot) = primals, tangents
    positive = x > 0
    scaled = jnp.where(positive, 0, x) * (1 / alpha)
    expm1 = jnp.expm1(scaled)
    exp = jnp.exp(scaled)
    y = jnp.where(positive, x, alpha * expm1)
    dy_dx = jnp.where(positive, 1, exp)
    # At x = -inf, scaled * exp is -inf * 0; its limit is 0. The term is formed
    # even when alpha is not differentiated (forward mode multiplies it by 0).
    dy_dalpha = jnp.where(positive, 0, expm1 - jnp.where(exp > 0, scaled * exp, 0))
    return y, dy_dx * x_dot + dy_dalpha * alpha_dot


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable exponential linear unit.

    .. math::
        \operatorname{celu}(x) = \begin{cases} x & x > 0 \\
            \alpha (e^{x/\alpha} - 1) & x \le 0 \end{cases}

    The derivative is written by hand as :math:`e^{x/\alpha}` for
    :math:`x \le 0` (autodiff of ``expm1`` cancels to 0 in the tail); it is 1 at
    0 from both sides for every alpha.

    Edge behaviour: ``celu(-inf) == -alpha``, ``celu(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).
      alpha: positive scale, a scalar or an array broadcastable with ``x``
        (default 1.0), differentiable.

    Returns:
      An array of the broadcast shape and the float dtype of ``x``.

    Raises:
      ValueError: if ``alpha`` is concrete (not traced) and any of its values
        is not a positive finite number: ``x / alpha`` makes the value NaN at 0
        for ``alpha = 0``, and the derivative overflow for negative ``alpha``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.celu(jnp.array([-1.0, 0.0, 2.0]), alpha=2.0))
      [-0.7869  0.      2.    ]
    """
    check_positive(
        "celu's alpha",
        alpha,
        "alpha scales the negative saturation -alpha and divides x",
    )
    return _celu_jit(x, alpha)


@jax.jit
def _celu_jit(x: ArrayLike, alpha: ArrayLike) -> Array:
    return lift(_celu, x, alpha)


@jax.jit
def selu(x: ArrayLike) -> Array:
    r"""Scaled exponential linear unit.

    .. math::
        \operatorname{selu}(x) = \lambda\, \operatorname{elu}(x, \alpha)

    with :math:`\lambda \approx 1.0507` and :math:`\alpha \approx 1.6733` from
    Klambauer et al., "Self-Normalizing Neural Networks" (2017). The derivative
    at 0 is :math:`\lambda\alpha` (the left branch), never a half-way value.

    Edge behaviour: ``selu(-inf) == -lambda * alpha``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.selu(jnp.array([-1.0, 0.0, 1.0])))
      [-1.1113  0.      1.0507]
    """
    return lift(lambda v, a, s: s * _elu(v, a), x, _SELU_ALPHA, _SELU_SCALE)
