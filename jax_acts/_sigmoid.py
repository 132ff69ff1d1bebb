"""Transcendental sigmoids (logistic, tanh, arctan, Gudermannian, erf, generalised
logistic) whose derivatives stay accurate in the tails, where the textbook
identities such as ``s (1 - s)`` cancel to zero."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import check_positive, lift
from jax_acts._numerics import (
    exp_neg_abs,
    exp_with_headroom,
    logistic_from,
    scaled_exp_neg_square,
    two_product,
)


@jax.custom_jvp
def _sigmoid(x: Array) -> Array:
    # XLA's logistic is accurate in both tails; the hand-written rule below only
    # replaces the derivative.
    return jax.lax.logistic(x)


@_sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = exp_neg_abs(x)
    # The clamp removes a one-ulp overshoot of the true maximum 1/4 near x = 0.
    derivative = jnp.minimum(e * r * r, 0.25)
    return logistic_from(x, e, r), derivative * x_dot


@jax.jit
def sigmoid(x: ArrayLike) -> Array:
    r"""Logistic sigmoid, with a derivative that is accurate in both tails.

    .. math::
        \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad
        \sigma'(x) = \frac{e^{-|x|}}{(1 + e^{-|x|})^2}

    The derivative is written by hand (``jax.custom_jvp``) in terms of
    :math:`e^{-|x|}`, which never cancels; the textbook :math:`\sigma(1-\sigma)`
    rounds to exactly 0 in float32 once :math:`|x|` passes about 17, although the
    true value is a normal float out to about 87. Under differentiation the value
    and the derivative share that exponential.

    Edge behaviour: ``sigmoid(-inf) == 0``, ``sigmoid(inf) == 1``, the derivative
    is 0 at both and finite for every finite input; NaN propagates.

    Args:
      x: input array of any shape. Integer and bool inputs are promoted to the
        default float type; float16 and bfloat16 are computed in float32.

    Returns:
      An array of the same shape and float dtype as ``x``, with values in [0, 1].

    Examples:
      >>> import jax, jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.sigmoid(jnp.array([-jnp.inf, -2.0, 0.0, 2.0, jnp.inf])))
      [0.     0.1192 0.5    0.8808 1.    ]
      >>> float(jax.grad(A.sigmoid)(40.0)) > 0, float(jax.grad(jax.nn.sigmoid)(40.0))
      (True, 0.0)

    See also:
      :func:`log_sigmoid`, :func:`generalized_logistic`, :func:`tanh`
    """
    return lift(_sigmoid, x)


@jax.custom_jvp
def _log_sigmoid(x: Array) -> Array:
    e, _ = exp_neg_abs(x)
    return jnp.minimum(x, 0) - jnp.log1p(e)


@_log_sigmoid.defjvp
def _log_sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = exp_neg_abs(x)
    y = jnp.minimum(x, 0) - jnp.log1p(e)
    sigmoid_neg = jnp.where(x >= 0, e * r, r)
    return y, sigmoid_neg * x_dot


@jax.jit
def log_sigmoid(x: ArrayLike) -> Array:
    r"""Logarithm of the logistic sigmoid.

    .. math::
        \log\sigma(x) = \min(x, 0) - \log\left(1 + e^{-|x|}\right), \qquad
        \frac{d}{dx}\log\sigma(x) = \sigma(-x)

    The derivative is written by hand as :math:`\sigma(-x)` computed from
    :math:`e^{-|x|}`, so it stays accurate (not 0) for large positive ``x``.

    Edge behaviour: ``log_sigmoid(-inf) == -inf``, ``log_sigmoid(inf) == 0``; the
    derivative tends to 1 and 0 there and is finite for every finite input.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``, with values in
      (-inf, 0].

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.log_sigmoid(jnp.array([-2.0, 0.0, 2.0])))
      [-2.1269 -0.6931 -0.1269]

    See also:
      :func:`sigmoid`, :func:`softplus`
    """
    return lift(_log_sigmoid, x)


@jax.custom_jvp
def _tanh(x: Array) -> Array:
    return jnp.tanh(x)


@_tanh.defjvp
def _tanh_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    # 4 e^{-2|x|} is normal out to |x| = 44.4, past the point where e^{-2|x|} is;
    # the exponent is shifted by 2 there, which is exact for such |x|.
    two_x = 2 * jnp.abs(x)
    shift = jnp.where(two_x > 64, 2, 0).astype(x.dtype)
    scaled = jnp.exp(shift - two_x)
    e = scaled * jnp.where(shift > 0, np.exp(-2), 1).astype(x.dtype)
    r = 1 / (1 + e)
    factor = 4 * jnp.where(shift > 0, np.exp(-2), 1).astype(x.dtype) * r * r
    # The clamp removes a one-ulp overshoot of the true maximum 1 near x = 0.
    derivative = jnp.minimum(scaled * factor, 1)
    return jnp.tanh(x), derivative * x_dot


@jax.jit
def tanh(x: ArrayLike) -> Array:
    r"""Hyperbolic tangent, with a derivative that is accurate in both tails.

    .. math::
        \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}, \qquad
        \tanh'(x) = \frac{4 e^{-2|x|}}{(1 + e^{-2|x|})^2}

    The derivative is written by hand: :math:`1 - \tanh^2 x` rounds to exactly 0
    in float32 once :math:`|x|` passes about 9, although the true value is a
    normal float out to about 44.

    Edge behaviour: ``tanh(±inf) == ±1`` with derivative 0; the derivative is
    finite for every finite input.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``, with values in [-1, 1].

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.tanh(jnp.array([-1.0, 0.0, 1.0, jnp.inf])))
      [-0.7616  0.      0.7616  1.    ]

    See also:
      :func:`sigmoid`, :func:`hard_tanh`
    """
    return lift(_tanh, x)


@jax.custom_jvp
def _arctan(x: Array) -> Array:
    return jnp.arctan(x)


@_arctan.defjvp
def _arctan_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    # Past 1 / sqrt(tiny) the true derivative is below the smallest normal float;
    # it is taken as 0 there, and the squared input never overflows (autodiff of
    # 1 / (1 + x^2) would give inf / inf = NaN as the second derivative).
    limit = 1 / np.sqrt(np.finfo(x.dtype).smallest_normal)
    a = jnp.abs(x)
    far = a > limit
    a = jnp.where(far, 0, a)
    return jnp.arctan(x), jnp.where(far, 0, 1 / (1 + a * a)) * x_dot


@jax.jit
def arctan(x: ArrayLike) -> Array:
    r"""Arctangent, an odd sigmoid with range :math:`(-\pi/2, \pi/2)`.

    .. math::
        \arctan'(x) = \frac{1}{1 + x^2}

    The rule has no cancellation. It is written by hand only so that
    :math:`x^2` never overflows: beyond :math:`|x| = 1/\sqrt{\text{tiny}}`,
    where the true derivative is below the smallest normal float, it is 0, and
    the second derivative stays finite for every finite input.

    Edge behaviour: ``arctan(±inf) == ±pi/2`` with derivative 0.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.arctan(jnp.array([-jnp.inf, 0.0, 1.0])))
      [-1.5708  0.      0.7854]
    """
    return lift(_arctan, x)


@jax.custom_jvp
def _gudermannian(x: Array) -> Array:
    # Below 1e-10, gd(x) = x to within x**2 / 6 relative, and x / 2 could be
    # subnormal and flushed to zero.
    return jnp.where(jnp.abs(x) < 1e-10, x, 2 * jnp.arctan(jnp.tanh(x / 2)))


@_gudermannian.defjvp
def _gudermannian_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    a = jnp.abs(x)
    # 2 e^{-|x|} is normal out to |x| = 88.0, past the point where e^{-|x|} is.
    shift = jnp.where(a > 64, 1, 0).astype(x.dtype)
    scaled = jnp.exp(shift - a)
    unscale = jnp.where(shift > 0, np.exp(-1), 1).astype(x.dtype)
    e = scaled * unscale
    # The clamp removes a one-ulp overshoot of the true maximum 1 at x = 0.
    derivative = jnp.minimum(scaled * (2 * unscale / (1 + e * e)), 1)
    return _gudermannian(x), derivative * x_dot


@jax.jit
def gudermannian(x: ArrayLike) -> Array:
    r"""Gudermannian function, an odd sigmoid with range :math:`(-\pi/2, \pi/2)`.

    .. math::
        \operatorname{gd}(x) = 2 \arctan\left(\tanh\frac{x}{2}\right), \qquad
        \operatorname{gd}'(x) = \operatorname{sech} x
            = \frac{2 e^{-|x|}}{1 + e^{-2|x|}}

    The derivative is written by hand from :math:`e^{-|x|}`: autodiff of the
    composition multiplies a vanishing :math:`1 - \tanh^2` and loses the tail.
    The forward form through :math:`\tanh(x/2)` never overflows, unlike
    :math:`\arctan(\sinh x)`.

    Edge behaviour: ``gudermannian(±inf) == ±pi/2`` with derivative 0.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.gudermannian(jnp.array([0.0, 1.0, jnp.inf])))
      [0.     0.8658 1.5708]
    """
    return lift(_gudermannian, x)


@jax.custom_jvp
def _erf(x: Array) -> Array:
    return jax.lax.erf(x)


@_erf.defjvp
def _erf_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    derivative = scaled_exp_neg_square(x, 2 / np.sqrt(np.pi))
    return jax.lax.erf(x), derivative * x_dot


@jax.jit
def erf(x: ArrayLike) -> Array:
    r"""Error function, an odd sigmoid with range (-1, 1).

    .. math::
        \operatorname{erf}(x) = \frac{2}{\sqrt\pi}\int_0^x e^{-t^2}\,dt, \qquad
        \operatorname{erf}'(x) = \frac{2}{\sqrt\pi} e^{-x^2}

    The derivative is written by hand: the plain rule rounds :math:`x^2` first,
    a relative error of up to :math:`x^2` ulps in :math:`e^{-x^2}` (about 4e-6 in
    float32 near :math:`|x| = 9`); here :math:`x^2` is split exactly.

    Edge behaviour: ``erf(±inf) == ±1`` with derivative 0.

    Args:
      x: input array of any shape (integers and bools are promoted).

    Returns:
      An array of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.erf(jnp.array([-jnp.inf, 0.0, 0.5, 2.0])))
      [-1.      0.      0.5205  0.9953]
    """
    return lift(_erf, x)


def _generalized_logistic_terms(x: Array, alpha: Array):
    r"""Splits :math:`\alpha \log\sigma(x)` into an exact large part and a small one.

    :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`; the product of
    ``alpha`` with the first term is kept exactly as ``p + q``, so
    :math:`\sigma(x)^\alpha = e^{p} e^{q - \alpha \log(1 + e^{-|x|})}` loses no
    accuracy to rounding of a large exponent.
    """
    e = jnp.exp(-jnp.abs(x))
    log1p_e = jnp.log1p(e)
    # Past alpha * x = -2000 the value is 0 in every float type; the clamp keeps
    # the exact product finite.
    linear = jnp.maximum(jnp.minimum(x, 0), -2000 / alpha)
    p, q = two_product(alpha, linear)
    small = q - alpha * log1p_e
    return e, log1p_e, linear, p, small


def _generalized_logistic_value(p: Array, small: Array) -> Array:
    # small <= q, a few ulps of p, so exp(small) <= 1 up to rounding.
    return exp_with_headroom(p, jnp.exp(small), 64)


@jax.custom_jvp
def _generalized_logistic(x: Array, alpha: Array) -> Array:
    _, _, _, p, small = _generalized_logistic_terms(x, alpha)
    return _generalized_logistic_value(p, small)


@_generalized_logistic.defjvp
def _generalized_logistic_jvp(primals, tangents):
    (x, alpha), (x_dot, alpha_dot) = primals, tangents
    e, log1p_e, linear, p, small = _generalized_logistic_terms(x, alpha)
    y = _generalized_logistic_value(p, small)

    # dy/dx = alpha y sigmoid(-x) = exp(p - max(x, 0)) * alpha e^{small} / (1 + e).
    # The exponent is exact; a shift by ceil(log alpha) gives alpha headroom.
    exponent = p - jnp.maximum(x, 0)
    shift = jnp.where(exponent < -64, jnp.maximum(jnp.ceil(jnp.log(alpha)), 0), 0)
    factor = alpha * jnp.exp(small - shift) / (1 + e)
    dy_dx = jnp.exp(exponent + shift) * factor

    # dy/dalpha = y log(sigmoid(x)), scaled the same way by ceil(log|log sigmoid|).
    log_sigmoid = linear - log1p_e
    magnitude = jnp.abs(log_sigmoid)
    shift = jnp.where(
        p < -64,
        jnp.maximum(jnp.ceil(jnp.log(jnp.where(magnitude > 0, magnitude, 1))), 0),
        0,
    )
    dy_dalpha = jnp.exp(p + shift) * (jnp.exp(small - shift) * log_sigmoid)
    return y, dy_dx * x_dot + dy_dalpha * alpha_dot


@jax.jit
def _generalized_logistic_jit(x: ArrayLike, alpha: ArrayLike) -> Array:
    return lift(_generalized_logistic, x, alpha)


def generalized_logistic(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Generalised logistic function (Richards' curve with unit growth rate).

    .. math::
        f(x) = \left(1 + e^{-x}\right)^{-\alpha} = \sigma(x)^\alpha, \qquad
        f'(x) = \alpha\, f(x)\, \sigma(-x), \qquad
        \frac{\partial f}{\partial\alpha} = f(x) \log\sigma(x)

    Value and derivatives are computed as exponentials of
    :math:`\alpha\log\sigma(x)`, whose large part :math:`\alpha\min(x, 0)` is
    kept exactly (a two-product split), so the tails stay accurate for every
    ``alpha``; the remaining error grows like ``alpha`` ulps (from
    :math:`\alpha\log(1 + e^{-|x|})`), within 1e-6 in float32 for
    ``alpha <= 4``. The derivatives are written by hand. ``alpha = 1`` is
    :func:`sigmoid`.

    Edge behaviour: ``f(-inf) == 0``, ``f(inf) == 1``, derivative 0 at both.

    Args:
      x: input array of any shape (integers and bools are promoted).
      alpha: positive exponent, a scalar or an array broadcastable with ``x``
        (default 1.0). Differentiable.

    Returns:
      An array of the broadcast shape and the float dtype of ``x``.

    Raises:
      ValueError: if ``alpha`` is concrete (not traced) and any of its values
        is not a positive finite number.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.generalized_logistic(jnp.array([-1.0, 0.0, 1.0]), alpha=2.0))
      [0.0723 0.25   0.5344]
    """
    # A traced alpha cannot be checked, and a bad one gives NaN or 0 instead.
    check_positive("alpha", alpha, "the curve is a sigmoid only for 0 < alpha < inf")
    return _generalized_logistic_jit(x, alpha)
