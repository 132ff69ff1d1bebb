"""Smooth relatives of ReLU (GELU, SiLU, softplus, mish), finite at infinity and
with derivatives that are finite for every finite input."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import lift
from jax_acts._numerics import exp_neg_abs, logistic_from


def _finite_below(x: Array) -> Array:
    """``x`` with -inf raised to the most negative float, for products ``x * g(x)``
    whose factor ``g`` is 0 there: the product becomes the limit 0, not NaN."""
    # lax.clamp differentiates as a select; jnp.maximum would split ties in half.
    lowest = np.asarray(-np.finfo(x.dtype).max, dtype=x.dtype)
    return jax.lax.clamp(lowest, x, np.asarray(np.inf, dtype=x.dtype))


def _finite(x: Array) -> Array:
    """``x`` with ±inf brought to the largest finite floats, for the ``x`` of a
    derivative term ``x * g(x)`` whose factor ``g`` is 0 at ±inf: the term takes
    its limit 0 there instead of NaN. NaN passes through."""
    largest = np.asarray(np.finfo(x.dtype).max, dtype=x.dtype)
    return jax.lax.clamp(-largest, x, largest)


@jax.custom_jvp
def _gelu_exact(x: Array) -> Array:
    sqrt_half = np.asarray(np.sqrt(0.5), dtype=x.dtype)
    return 0.5 * _finite_below(x) * jax.lax.erfc(-x * sqrt_half)


@_gelu_exact.defjvp
def _gelu_exact_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    # The same terms as autodiff of the value, Phi(x) + x phi(x), except that x
    # is finite in x phi(x): autodiff gives inf * 0 = NaN at x = inf.
    sqrt_half = np.asarray(np.sqrt(0.5), dtype=x.dtype)
    pdf_scale = np.asarray(np.sqrt(0.5 / np.pi), dtype=x.dtype)
    xf = _finite(x)
    z = -xf * sqrt_half
    slope = 0.5 * jax.lax.erfc(z) + xf * pdf_scale * jnp.exp(-z * z)
    return _gelu_exact(x), slope * x_dot


_GELU_CUBIC = 0.044715


def _gelu_tanh_inner(x: Array) -> Array:
    k = np.asarray(np.sqrt(2 / np.pi), dtype=x.dtype)
    return k * (x + _GELU_CUBIC * x**3)


def _gelu_tanh_saturated(x: Array) -> Array:
    # The tanh is exactly ±1 beyond |x| = 100 in every float type, so x is
    # clamped there: the cube cannot overflow, and the derivative of this factor
    # (used by second-order autodiff) is 0 instead of 0 * inf.
    return jnp.tanh(_gelu_tanh_inner(jnp.clip(x, -100, 100)))


@jax.custom_jvp
def _gelu_tanh(x: Array) -> Array:
    return 0.5 * _finite_below(x) * (1 + _gelu_tanh_saturated(x))


@_gelu_tanh.defjvp
def _gelu_tanh_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    t = _gelu_tanh_saturated(x)
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
    if not isinstance(approximate, bool | np.bool_):
        # A string such as "none" or "tanh" would be truthy and pick a form silently.
        raise TypeError(
            f"approximate must be True (tanh form) or False (exact form), got "
            f"{approximate!r}"
        )
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
    # A finite x keeps the limits at ±inf (1 and 0) instead of inf * 0.
    return y, s * (1 + _finite(x) * sigmoid_neg) * x_dot


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
    # A finite x keeps the limits at ±inf (1 and 0) instead of inf * 0.
    return y, (tanh_softplus + _finite(x) * sech2_softplus * s) * x_dot


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
