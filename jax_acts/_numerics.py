"""Floating-point building blocks for tails that stay accurate: exponentials
shared between a value and its derivative, exponentials kept normal while their
product is, and exact products."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array


def exp_neg_abs(x: Array) -> tuple[Array, Array]:
    """Returns ``e = exp(-|x|)`` and ``r = 1 / (1 + e)``, both in (0, 1]."""
    e = jnp.exp(-jnp.abs(x))
    return e, 1 / (1 + e)


def logistic_from(x: Array, e: Array, r: Array) -> Array:
    # 1 - s is never formed: for x < 0 the small value e * r is computed directly.
    return jnp.where(x >= 0, r, e * r)


def exp_with_headroom(exponent: Array, factor: Array, threshold: float) -> Array:
    """Returns ``exp(exponent) * factor`` for ``exponent <= 0`` and ``factor <= 1``.

    When ``exponent < -threshold`` the exponential alone could be subnormal (and
    flushed to zero) although the product is normal, so ``exp(exponent + 1)`` is
    taken instead and ``factor`` scaled by ``1/e``. Adding 1 is exact there, so
    the tail stays accurate.
    """
    shift = jnp.where(exponent < -threshold, 1, 0).astype(exponent.dtype)
    scale = jnp.where(shift > 0, np.exp(-1), 1).astype(exponent.dtype)
    return jnp.exp(exponent + shift) * (factor * scale)


def scaled_exp_neg_square(x: Array, scale: float) -> Array:
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


def split_significand(v: Array) -> tuple[Array, Array]:
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


def two_product(a: Array, b: Array) -> tuple[Array, Array]:
    """Returns ``p = a * b`` rounded and ``q`` with ``p + q == a * b`` exactly."""
    p = a * b
    a_hi, a_lo = split_significand(a)
    b_hi, b_lo = split_significand(b)
    q = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, q
