"""Rectified linear units and their smooth relatives, with derivatives that stay
finite for every finite input and conventions fixed at the kinks."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import lift
from jax_acts._numerics import exp_neg_abs, logistic_from

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _finite_below(x: Array) -> Array:
    """``x`` with -inf raised to the most negative float, for products ``x * g(x)``
    whose factor ``g`` is 0 there: the product becomes the limit 0, not NaN."""
    # lax.clamp differentiates as a select; jnp.maximum would split ties in half.
    lowest = np.asarray(-np.finfo(x.dtype).max, dtype=x.dtype)
    return jax.lax.clamp(lowest, x, np.asarray(np.inf, dtype=x.dtype))


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
    return jnp.where(x >= 0, x, negative_slope * x)


@jax.jit
def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky ReLU.

    .. math::
        f(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases}

    where :math:`a` is ``negative_slope``. Autodiff of the ``where`` gives the
    derivative 1 at 0 (the branch ``x >= 0``), as in ``jax.nn.leaky_relu``.

    Edge behaviour: ``leaky_relu(±inf) == ±inf`` (for a positive slope).

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
    dy_dalpha = jnp.where(positive, 0, expm1 - scaled * exp)
    return y, dy_dx * x_dot + dy_dalpha * alpha_dot


@jax.jit
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
      alpha: positive scale (default 1.0), differentiable.

    Returns:
      An array of the broadcast shape and the float dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.celu(jnp.array([-1.0, 0.0, 2.0]), alpha=2.0))
      [-0.7869  0.      2.    ]
    """
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


def _gelu_exact(x: Array) -> Array:
    sqrt_half = np.asarray(np.sqrt(0.5), dtype=x.dtype)
    return 0.5 * _finite_below(x) * jax.lax.erfc(-x * sqrt_half)


_GELU_CUBIC = 0.044715


def _gelu_tanh_inner(x: Array) -> Array:
    k = np.asarray(np.sqrt(2 / np.pi), dtype=x.dtype)
    return k * (x + _GELU_CUBIC * x**3)


@jax.custom_jvp
def _gelu_tanh(x: Array) -> Array:
    # The cube may overflow to ±inf for huge x; tanh then saturates to the same
    # ±1 it would have reached anyway.
    return 0.5 * _finite_below(x) * (1 + jnp.tanh(_gelu_tanh_inner(x)))


@_gelu_tanh.defjvp
def _gelu_tanh_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    t = jnp.tanh(_gelu_tanh_inner(x))
    y = 0.5 * _finite_below(x) * (1 + t)
    # Clamped where 1 - t^2 is already exactly 0, so the product stays 0 instead
    # of 0 * inf.
    xc = jnp.clip(x, -100, 100)
    k = np.asarray(np.sqrt(2 / np.pi), dtype=x.dtype)
    slope = 0.5 * (1 + t) + 0.5 * xc * (1 - t * t) * k * (1 + 3 * _GELU_CUBIC * xc * xc)
    return y, slope * x_dot


def gelu(x: ArrayLike, approximate: bool = False) -> Array:
    r"""Gaussian error linear unit, exact by default.

    .. math::
        \operatorname{gelu}(x) = x\,\Phi(x)
            = \frac{x}{2}\operatorname{erfc}\left(-\frac{x}{\sqrt2}\right)

    and with ``approximate=True`` the tanh form
    :math:`\frac{x}{2}\left(1 + \tanh\left(\sqrt{2/\pi}(x + 0.044715 x^3)
    \right)\right)`.

    Unlike ``jax.nn.gelu`` (whose default is ``approximate=True``), the default
    here is the exact form, as in PyTorch. Autodiff gives
    :math:`\Phi(x) + x\varphi(x)`; the tanh form's derivative is written by
    hand, clamped at :math:`|x| = 100` where the tanh is already ±1, so no
    gradient is ever NaN.
    Accuracy is that of the formulas, as in ``jax.nn.gelu``: in the negative tail
    the rounded argument of ``erfc`` costs a relative error of about
    :math:`x^2` ulps (1e-5 at :math:`x = -12` in float32), and the tanh form
    loses :math:`1 + \tanh` to cancellation below about -5.

    Edge behaviour: ``gelu(-inf) == 0``, ``gelu(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).
      approximate: use the tanh approximation instead of the exact form
        (default False).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.gelu(jnp.array([-1.0, 0.0, 1.0])))
      [-0.1587  0.      0.8413]
      >>> with jnp.printoptions(precision=4):
      ...     print(A.gelu(jnp.array([-1.0, 0.0, 1.0]), approximate=True))
      [-0.1588  0.      0.8412]
    """
    return _gelu_jit(x, approximate=bool(approximate))


@jax.jit(static_argnames=("approximate",))
def _gelu_jit(x: ArrayLike, approximate: bool) -> Array:
    return lift(_gelu_tanh if approximate else _gelu_exact, x)


@jax.custom_jvp
def _silu(x: Array) -> Array:
    return _finite_below(x) * jax.lax.logistic(x)


@_silu.defjvp
def _silu_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = exp_neg_abs(x)
    s = logistic_from(x, e, r)
    sigmoid_neg = jnp.where(x >= 0, e * r, r)
    y = _finite_below(x) * s
    return y, s * (1 + x * sigmoid_neg) * x_dot


@jax.jit
def silu(x: ArrayLike) -> Array:
    r"""Sigmoid linear unit, also called swish.

    .. math::
        \operatorname{silu}(x) = x\,\sigma(x), \qquad
        \operatorname{silu}'(x) = \sigma(x)\left(1 + x\,\sigma(-x)\right)

    The derivative is written by hand in this factored form, which keeps its
    relative accuracy in the negative tail and costs one exponential.

    Edge behaviour: ``silu(-inf) == 0`` (the limit; ``jax.nn.silu`` gives NaN),
    ``silu(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.silu(jnp.array([-jnp.inf, -1.0, 0.0, 1.0])))
      [-0.     -0.2689  0.      0.7311]
    """
    return lift(_silu, x)


swish = silu


@jax.custom_jvp
def _softplus(x: Array) -> Array:
    e, _ = exp_neg_abs(x)
    return jnp.maximum(x, 0) + jnp.log1p(e)


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = exp_neg_abs(x)
    y = jnp.maximum(x, 0) + jnp.log1p(e)
    return y, logistic_from(x, e, r) * x_dot


@jax.jit
def softplus(x: ArrayLike) -> Array:
    r"""Softplus, a smooth ReLU.

    .. math::
        \operatorname{softplus}(x) = \log(1 + e^x)
            = \max(x, 0) + \log\left(1 + e^{-|x|}\right), \qquad
        \operatorname{softplus}'(x) = \sigma(x)

    The derivative is written by hand as the tail-accurate :func:`sigmoid`,
    sharing the forward pass's :math:`e^{-|x|}`.

    Edge behaviour: ``softplus(-inf) == 0``, ``softplus(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.softplus(jnp.array([-jnp.inf, -1.0, 0.0, 1.0])))
      [0.     0.3133 0.6931 1.3133]
    """
    return lift(_softplus, x)


def _mish_parts(x: Array) -> tuple[Array, Array, Array]:
    """Returns ``sigmoid(x)``, ``v = sigmoid(-x) = exp(-softplus(x))`` and
    ``1 / (1 + v**2)``, all without cancellation."""
    e, r = exp_neg_abs(x)
    s = logistic_from(x, e, r)
    v = jnp.where(x >= 0, e * r, r)
    return s, v, 1 / (1 + v * v)


@jax.custom_jvp
def _mish(x: Array) -> Array:
    s, v, q = _mish_parts(x)
    # tanh(softplus(x)) = (1 - v^2) / (1 + v^2), with 1 - v = sigmoid(x) exactly.
    return _finite_below(x) * (s * (1 + v) * q)


@_mish.defjvp
def _mish_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    s, v, q = _mish_parts(x)
    tanh_softplus = s * (1 + v) * q
    # sech^2(softplus(x)) = 4 v^2 / (1 + v^2)^2, never formed as 1 - tanh^2.
    sech2_softplus = 4 * v * v * q * q
    y = _finite_below(x) * tanh_softplus
    return y, (tanh_softplus + x * sech2_softplus * s) * x_dot


@jax.jit
def mish(x: ArrayLike) -> Array:
    r"""Mish, :math:`x \tanh(\operatorname{softplus}(x))`.

    .. math::
        \operatorname{mish}(x) = x\,\frac{1 - v^2}{1 + v^2}, \qquad
        \operatorname{mish}'(x) = \frac{1 - v^2}{1 + v^2}
            + x\,\sigma(x) \frac{4 v^2}{(1 + v^2)^2}, \qquad
        v = e^{-\operatorname{softplus}(x)} = \sigma(-x)

    Both are written in terms of :math:`\sigma(\pm x)` from one exponential, with
    :math:`1 - v^2 = \sigma(x)(1 + v)`: no logarithm, no tanh, and no
    cancellation, so the derivative keeps the term :math:`x\operatorname{sech}^2`
    that the textbook :math:`1 - \tanh^2` rounds away for large ``x``. The
    derivative is written by hand.

    Edge behaviour: ``mish(-inf) == 0`` (the limit; ``jax.nn.mish`` gives NaN),
    ``mish(inf) == inf``.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.mish(jnp.array([-jnp.inf, -1.0, 0.0, 1.0])))
      [-0.     -0.3034  0.      0.8651]
    """
    return lift(_mish, x)
