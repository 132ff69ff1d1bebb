"""Softmax, log-softmax and log-sum-exp along an axis, defined at the edges (``+inf``
logits, empty or fully masked rows) and never letting masked entries leak."""

import functools
import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import as_float, work_dtype

Axis = int | Sequence[int] | None


def _canonical_axis(axis: Axis) -> int | tuple[int, ...] | None:
    """``axis`` as None, an int or a tuple of ints, hashable for ``jax.jit``.

    Lists and NumPy or JAX integer scalars are accepted, as by ``jax.nn``.
    """
    if axis is None:
        return None
    try:
        return operator.index(axis)
    except TypeError:
        pass
    try:
        return tuple(operator.index(a) for a in axis)
    except TypeError:
        raise TypeError(
            f"axis must be an int, a sequence of ints or None, got {axis!r}"
        ) from None


def _prepare(x: ArrayLike, where: ArrayLike | None) -> tuple[Array, Array | None]:
    """Returns the logits in work precision and the mask broadcast to their shape."""
    logits = as_float(x)
    logits = logits.astype(work_dtype(logits.dtype))
    if where is None:
        return logits, None
    mask = jnp.asarray(where, dtype=bool)
    try:
        mask = jnp.broadcast_to(mask, logits.shape)
    except ValueError as err:
        raise ValueError(
            f"where has shape {mask.shape}, which does not broadcast to the "
            f"logits' shape {logits.shape}; pass a mask of a broadcastable shape"
        ) from err
    return logits, mask


def _masked_max(
    logits: Array, axis: Axis, mask: Array | None
) -> tuple[Array, Array, Array]:
    """Returns ``(logits, row_max, shift)``: the logits with masked entries at
    ``-inf``, each row's maximum, and the finite constant the normalisers
    subtract (the maximum, or 0 where it is not finite)."""
    if mask is not None:
        # A select, not a product: masked inf/nan values are dropped rather than
        # multiplied by zero.
        logits = jnp.where(mask, logits, -jnp.inf)
    row_max = jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf)
    # The shift only stabilises: the result does not depend on it.
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(row_max), row_max, 0))
    return logits, row_max, shift


def _shifted(
    logits: Array, axis: Axis, mask: Array | None, share_infinite: bool = True
) -> tuple[Array, Array, Array, Array, Array]:
    """Shared first steps of the normalisers.

    Returns ``(u, total, shift, empty, row_inf)``: ``u`` is the shifted logits
    (``-inf`` where masked), ``total`` the row sum of ``exp(u)`` (1 where the row
    is empty, so logs and divisions stay finite), ``shift`` the constant
    subtracted, and flags for rows with no usable entry or with a ``+inf`` entry.
    With ``share_infinite=False`` rows holding ``+inf`` get ``u = 0`` instead of
    their limit, for callers that replace those rows' result anyway.
    """
    logits, row_max, shift = _masked_max(logits, axis, mask)
    empty = row_max == -jnp.inf
    row_inf = row_max == jnp.inf
    if share_infinite:
        # The limit of a row holding +inf: those entries share the mass equally.
        inf_limit = jnp.where(logits == jnp.inf, 0.0, -jnp.inf).astype(logits.dtype)
    else:
        inf_limit = jnp.zeros((), logits.dtype)
    # Rows holding +inf never reach exp as inf - inf.
    u = jnp.where(row_inf, inf_limit, logits - shift)
    total = jnp.sum(jnp.exp(u), axis=axis, keepdims=True)
    total = jnp.where(empty, 1, total)
    return u, total, shift, empty, row_inf


def _live_tangent(logits_dot: Array, mask: Array | None, row_inf: Array) -> Array:
    """The input tangent with masked entries and rows holding +inf zeroed: the
    result does not depend on them (a select, so a NaN tangent cannot leak)."""
    live = ~row_inf if mask is None else mask & ~row_inf
    return jnp.where(live, logits_dot, 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax(logits: Array, axis: Axis, mask: Array | None) -> Array:
    u, total, _, _, _ = _shifted(logits, axis, mask)
    return jnp.exp(u) / total


@_softmax.defjvp
def _softmax_jvp(axis, primals, tangents):
    (logits, mask), (logits_dot, _) = primals, tangents
    u, total, _, _, row_inf = _shifted(logits, axis, mask)
    probs = jnp.exp(u) / total
    t = _live_tangent(logits_dot, mask, row_inf)
    return probs, probs * (t - jnp.sum(probs * t, axis=axis, keepdims=True))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_softmax(logits: Array, axis: Axis, mask: Array | None) -> Array:
    u, total, _, empty, _ = _shifted(logits, axis, mask)
    return jnp.where(empty, -jnp.inf, u - jnp.log(total))


@_log_softmax.defjvp
def _log_softmax_jvp(axis, primals, tangents):
    (logits, mask), (logits_dot, _) = primals, tangents
    u, total, _, empty, row_inf = _shifted(logits, axis, mask)
    result = jnp.where(empty, -jnp.inf, u - jnp.log(total))
    probs = jnp.exp(u) / total
    t = _live_tangent(logits_dot, mask, row_inf)
    tangent = t - jnp.sum(probs * t, axis=axis, keepdims=True)
    # Masked entries, empty rows and rows holding +inf are constant.
    constant = row_inf | empty if mask is None else row_inf | empty | ~mask
    return result, jnp.where(constant, 0, tangent)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _logsumexp(logits: Array, axis: Axis, mask: Array | None) -> Array:
    # The value needs no select inside the sum, which would cost XLA's CPU
    # reduction its vectorisation (5x at 16M elements): with a finite shift,
    # a row with no usable entry sums to 0 and its log is already -inf, a row
    # holding +inf sums to +inf, and NaN propagates; only the +inf rows are
    # fixed, once per row.
    logits, row_max, shift = _masked_max(logits, axis, mask)
    total = jnp.sum(jnp.exp(logits - shift), axis=axis, keepdims=True)
    return jnp.where(row_max == jnp.inf, jnp.inf, shift + jnp.log(total))


@_logsumexp.defjvp
def _logsumexp_jvp(axis, primals, tangents):
    (logits, mask), (logits_dot, _) = primals, tangents
    u, total, shift, empty, row_inf = _shifted(logits, axis, mask, False)
    finite = shift + jnp.log(total)
    result = jnp.where(empty, -jnp.inf, jnp.where(row_inf, jnp.inf, finite))
    probs = jnp.exp(u) / total
    t = _live_tangent(logits_dot, mask, row_inf)
    return result, jnp.sum(probs * t, axis=axis, keepdims=True)


def softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    r"""Softmax along ``axis``, defined for every input.

    .. math::
        \operatorname{softmax}(x)_j = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}},
        \qquad m = \max_k x_k

    The shift :math:`m` is the maximum over unmasked entries. The derivative is
    written by hand as the Jacobian-vector product
    :math:`s \odot (t - \langle s, t \rangle)` of
    :math:`\operatorname{diag}(s) - s s^\top` (one pass, as in
    ``jax.nn.softmax``), with the tangent of masked entries and of rows holding
    ``+inf`` selected away, so none of them can reach a gradient.
    Half-precision inputs are accumulated in float32.

    Edge behaviour:
      - ``+inf`` entries share the mass equally, every other entry gets 0, and
        the gradient is 0 (``jax.nn.softmax([inf, 0])`` is NaN);
      - a row with no usable entry (all ``-inf``, or all masked) gives 0 and a
        zero gradient;
      - masked-out entries give 0 and never affect values or gradients, whatever
        they hold (even inf or NaN);
      - NaN in an unmasked entry makes that row NaN, and only that row.

    Args:
      x: logits of any shape (integers and bools are promoted).
      axis: axis or sequence of axes to normalise over, or None for all
        (default -1).
      where: optional boolean mask broadcastable to ``x``; False entries are
        excluded.

    Returns:
      Probabilities of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> logits = jnp.array([[0.0, jnp.log(3.0), 0.0], [jnp.inf, 1.0, jnp.inf]])
      >>> with jnp.printoptions(precision=4):
      ...     print(A.softmax(logits, where=jnp.array([True, True, False])))
      [[0.25 0.75 0.  ]
       [1.   0.   0.  ]]
      >>> with jnp.printoptions(precision=4):
      ...     print(A.softmax(logits))
      [[0.2 0.6 0.2]
       [0.5 0.  0.5]]

    See also:
      :func:`log_softmax`, :func:`logsumexp`, :func:`softmax_jacobian`
    """
    return _softmax_jit(x, _canonical_axis(axis), where)


@jax.jit(static_argnames=("axis",))
def _softmax_jit(x: ArrayLike, axis: Axis, where: ArrayLike | None) -> Array:
    logits, mask = _prepare(x, where)
    return _softmax(logits, axis, mask).astype(as_float(x).dtype)


def log_softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    r"""Logarithm of :func:`softmax`, computed without forming the softmax.

    .. math::
        \operatorname{log\_softmax}(x)_j = (x_j - m) - \log\sum_k e^{x_k - m},
        \qquad m = \max_k x_k

    The derivative is written by hand as :math:`t - \langle s, t \rangle` with
    :math:`s` the softmax, zero for masked entries, empty rows and rows holding
    ``+inf``. Half-precision inputs are accumulated in float32.

    Edge behaviour:
      - with ``+inf`` entries the result is the log of the limit: ``-log(k)``
        for each of the ``k`` infinite entries, ``-inf`` elsewhere, gradient 0;
      - a row with no usable entry (all ``-inf``, or all masked) gives ``-inf``
        and a zero gradient;
      - masked-out entries give ``-inf`` and never affect values or gradients;
      - NaN in an unmasked entry makes that row NaN, and only that row.

    Args:
      x: logits of any shape (integers and bools are promoted).
      axis: axis or sequence of axes to normalise over, or None for all
        (default -1).
      where: optional boolean mask broadcastable to ``x``; False entries are
        excluded.

    Returns:
      Log-probabilities of the same shape and float dtype as ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.log_softmax(jnp.array([0.0, 0.0, 0.0, 0.0]))
      Array([-1.3862944, -1.3862944, -1.3862944, -1.3862944], dtype=float32)
      >>> A.log_softmax(jnp.array([-jnp.inf, -jnp.inf]))
      Array([-inf, -inf], dtype=float32)

    See also:
      :func:`softmax`, :func:`logsumexp`
    """
    return _log_softmax_jit(x, _canonical_axis(axis), where)


@jax.jit(static_argnames=("axis",))
def _log_softmax_jit(x: ArrayLike, axis: Axis, where: ArrayLike | None) -> Array:
    logits, mask = _prepare(x, where)
    return _log_softmax(logits, axis, mask).astype(as_float(x).dtype)


def logsumexp(
    x: ArrayLike,
    axis: Axis = None,
    *,
    where: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Logarithm of the sum of exponentials, computed stably.

    .. math::
        \operatorname{logsumexp}(x) = m + \log\sum_k e^{x_k - m},
        \qquad m = \max_k x_k

    As in ``jax.nn.logsumexp``, ``axis`` defaults to None (reduce over every
    axis); ``where`` and ``keepdims`` are keyword-only, so a positional weight
    array meant for ``jax.nn.logsumexp``'s ``b`` fails loudly instead of being
    read as a mask. The derivative is written by hand: the gradient is
    :func:`softmax` of the same row, zero for masked entries. Half-precision
    inputs are accumulated in float32.

    Edge behaviour: a row with a ``+inf`` entry gives ``+inf``; a row with no
    usable entry (all ``-inf``, or all masked) gives ``-inf``; both have a zero
    gradient. Masked-out entries never affect values or gradients. NaN in an
    unmasked entry gives NaN for that row only.

    Args:
      x: input of any shape (integers and bools are promoted).
      axis: axis or sequence of axes to reduce, or None for all (default None).
      where: optional boolean mask broadcastable to ``x``; False entries are
        excluded.
      keepdims: keep the reduced axes with size 1 (default False).

    Returns:
      The reduced array, in the float dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> logits = jnp.array([[1000.0, 1000.0], [-jnp.inf, -jnp.inf]])
      >>> with jnp.printoptions(precision=2):
      ...     print(A.logsumexp(logits, axis=-1))
      [1000.69    -inf]
    """
    return _logsumexp_jit(x, _canonical_axis(axis), where, bool(keepdims))


@jax.jit(static_argnames=("axis", "keepdims"))
def _logsumexp_jit(
    x: ArrayLike, axis: Axis, where: ArrayLike | None, keepdims: bool
) -> Array:
    logits, mask = _prepare(x, where)
    result = _logsumexp(logits, axis, mask)
    if not keepdims:
        result = jnp.squeeze(result, axis=axis)
    return result.astype(as_float(x).dtype)


@jax.jit(static_argnames=("axis",))
def softmax_jacobian(x: ArrayLike, axis: int = -1) -> Array:
    r"""Jacobian of :func:`softmax` along one axis, in closed form.

    .. math::
        J_{ij} = \frac{\partial s_i}{\partial x_j} = s_i(\delta_{ij} - s_j)
        = \operatorname{diag}(s) - s s^\top

    The diagonal :math:`s_i(1 - s_i)` is evaluated as :math:`s_i \sum_{k \ne i}
    s_k`, which keeps its relative accuracy when one :math:`s_i` is close to 1.
    It matches ``jax.jacobian(softmax)``, including rows with ``+inf`` entries
    and empty rows, where both are zero.

    Args:
      x: logits of any shape ``(..., n, ...)`` (integers and bools promoted).
      axis: the single axis the softmax normalises (default -1).

    Returns:
      An array of shape ``(*batch, n, n)`` where ``batch`` is the shape of ``x``
      without ``axis``, in the float dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp, jax_acts as A
      >>> A.softmax_jacobian(jnp.array([0.0, 0.0]))
      Array([[ 0.25, -0.25],
             [-0.25,  0.25]], dtype=float32)
    """
    try:
        # Any integer type (NumPy's included), but not a tuple of axes.
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(
            f"softmax_jacobian takes a single integer axis, got {axis!r}; move the "
            "axes you need into one first"
        ) from None
    logits, _ = _prepare(x, None)
    dtype = as_float(x).dtype
    u, total, _, _, row_inf = _shifted(logits, axis, None)
    probs = jnp.moveaxis(jnp.exp(u) / total, axis, -1)
    frozen = jnp.moveaxis(row_inf, axis, -1)[..., None]
    n = probs.shape[-1]
    off_diagonal = 1 - jnp.eye(n, dtype=probs.dtype)
    # An explicit sum rather than a matmul, whose default precision may be reduced.
    others = jnp.sum(probs[..., None, :] * off_diagonal, axis=-1)
    diagonal = probs * others
    outer = probs[..., :, None] * probs[..., None, :]
    jacobian = jnp.where(jnp.eye(n, dtype=bool), diagonal[..., None], -outer)
    return jnp.where(frozen, 0, jacobian).astype(dtype)
