"""Sigmoid-shaped activations whose derivatives stay accurate in the tails, where
the textbook identities such as ``s (1 - s)`` cancel to zero."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import lift


def _exp_neg_abs(x: Array) -> tuple[Array, Array]:
    """Returns ``e = exp(-|x|)`` and ``r = 1 / (1 + e)``, both in (0, 1]."""
    e = jnp.exp(-jnp.abs(x))
    return e, 1 / (1 + e)


def _logistic_from(x: Array, e: Array, r: Array) -> Array:
    # 1 - s is never formed: for x < 0 the small value e * r is computed directly.
    return jnp.where(x >= 0, r, e * r)


def _exp_with_headroom(exponent: Array, factor: Array, threshold: float) -> Array:
    """Returns ``exp(exponent) * factor`` for ``exponent <= 0`` and ``factor <= 1``.

    When ``exponent < -threshold`` the exponential alone could be subnormal (and
    flushed to zero) although the product is normal, so ``exp(exponent + 1)`` is
    taken instead and ``factor`` scaled by ``1/e``. Adding 1 is exact there, so
    the tail stays accurate.
    """
    shift = jnp.where(exponent < -threshold, 1, 0).astype(exponent.dtype)
    scale = jnp.where(shift > 0, np.exp(-1), 1).astype(exponent.dtype)
    return jnp.exp(exponent + shift) * (factor * scale)


@jax.custom_jvp
def _sigmoid(x: Array) -> Array:
    # XLA's logistic is accurate in both tails; the hand-written rule below only
    # replaces the derivative.
    return jax.lax.logistic(x)


@_sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = _exp_neg_abs(x)
    # The clamp removes a one-ulp overshoot of the true maximum 1/4 near x = 0.
    derivative = jnp.minimum(e * r * r, 0.25)
    return _logistic_from(x, e, r), derivative * x_dot


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
    e, _ = _exp_neg_abs(x)
    return jnp.minimum(x, 0) - jnp.log1p(e)


@_log_sigmoid.defjvp
def _log_sigmoid_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    e, r = _exp_neg_abs(x)
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


@jax.jit
def arctan(x: ArrayLike) -> Array:
    r"""Arctangent, an odd sigmoid with range :math:`(-\pi/2, \pi/2)`.

    .. math::
        \arctan'(x) = \frac{1}{1 + x^2}

    Autodiff of :func:`jax.numpy.arctan` already gives this rule, and it has no
    cancellation: :math:`1 + x^2` only overflows where the true derivative is
    below the smallest normal float, and then the result is the correct 0.

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
    return lift(jnp.arctan, x)


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


def _scaled_exp_neg_square(x: Array, scale: float) -> Array:
    r"""Computes ``scale`` :math:`\cdot e^{-x^2}` to a few ulps, for ``scale < e``.

    Rounding :math:`x^2` alone would cost up to 64 ulps at :math:`x^2 \approx 87`,
    so ``x`` is split into a part ``hi`` with few bits (``hi**2`` is exact) and a
    small remainder. The large factor carries an extra ``e`` and the small one
    ``scale / e``, so the large factor is normal wherever the result is.
    """
    # Beyond |x| = 40 the result underflows in every float type used here.
    x = jnp.clip(x, -40, 40)
    hi = jnp.round(x * 64) / 64
    lo = x - hi
    small_factor = np.asarray(scale / np.e, dtype=x.dtype) * jnp.exp(-lo * (x + hi))
    return jnp.exp(1 - hi * hi) * small_factor


@jax.custom_jvp
def _erf(x: Array) -> Array:
    return jax.lax.erf(x)


@_erf.defjvp
def _erf_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    derivative = _scaled_exp_neg_square(x, 2 / np.sqrt(np.pi))
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


def _split(v: Array) -> tuple[Array, Array]:
    """Splits ``v`` into ``hi + lo`` exactly, each with half the significand bits.

    ``reduce_precision`` rounds explicitly, so unlike the multiply-and-subtract
    (Veltkamp) split no compiler contraction into fused multiply-adds can break it.
    """
    finfo = jnp.finfo(v.dtype)
    hi_bits = (finfo.nmant + 1) // 2
    hi = jax.lax.reduce_precision(
        v, exponent_bits=finfo.nexp, mantissa_bits=hi_bits - 1
    )
    return hi, v - hi


def _two_product(a: Array, b: Array) -> tuple[Array, Array]:
    """Returns ``p = a * b`` rounded and ``q`` with ``p + q == a * b`` exactly."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    q = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, q


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
    p, q = _two_product(alpha, linear)
    small = q - alpha * log1p_e
    return e, log1p_e, linear, p, small


def _generalized_logistic_value(p: Array, small: Array) -> Array:
    # small <= q, a few ulps of p, so exp(small) <= 1 up to rounding.
    return _exp_with_headroom(p, jnp.exp(small), 64)


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
      ValueError: if ``alpha`` is a concrete number that is not positive.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> with jnp.printoptions(precision=4):
      ...     print(A.generalized_logistic(jnp.array([-1.0, 0.0, 1.0]), alpha=2.0))
      [0.0723 0.25   0.5344]
    """
    if isinstance(alpha, int | float) and not alpha > 0:
        raise ValueError(
            f"alpha must be positive, got {alpha!r}; the curve is a sigmoid only "
            "for alpha > 0"
        )
    return _generalized_logistic_jit(x, alpha)


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
