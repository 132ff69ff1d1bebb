"""Softmax, log-softmax and log-sum-exp along an axis, defined at the edges (``+inf``
logits, empty or fully masked rows) and never letting masked entries leak."""

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jax_acts._dtypes import as_float, work_dtype

Axis = int | tuple[int, ...] | None


def _shifted(
    x: ArrayLike, axis: Axis, where: ArrayLike | None, share_infinite: bool = True
) -> tuple[Array, Array, Array, Array, Array, jnp.dtype]:
    """Shared first steps of the normalisers, in work precision.

    Returns ``(u, total, shift, empty, row_inf, dtype)``: ``u`` is the shifted
    logits (``-inf`` where masked), ``total`` is the row sum of ``exp(u)`` (1
    where the row is empty, so logs and divisions stay finite), ``shift`` the
    constant subtracted, and flags for rows with no usable entry or with a
    ``+inf`` entry; ``dtype`` is the float dtype results are returned in.
    With ``share_infinite=False`` rows holding ``+inf`` get ``u = 0`` instead of
    their limit, for callers that replace those rows' result anyway.
    """
    x = as_float(x)
    dtype = x.dtype
    logits = x.astype(work_dtype(dtype))
    if where is not None:
        mask = jnp.asarray(where, dtype=bool)
        try:
            mask = jnp.broadcast_to(mask, logits.shape)
        except ValueError as err:
            raise ValueError(
                f"where has shape {mask.shape}, which does not broadcast to the "
                f"logits' shape {logits.shape}; pass a mask of a broadcastable shape"
            ) from err
        # A select, not a product: masked inf/nan values and their cotangents are
        # dropped rather than multiplied by zero.
        logits = jnp.where(mask, logits, -jnp.inf)

    row_max = jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf)
    empty = row_max == -jnp.inf
    row_inf = row_max == jnp.inf
    # The shift only stabilises; stop_gradient keeps it out of autodiff, which is
    # exact because the result does not depend on it.
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(row_max), row_max, 0))
    if share_infinite:
        # The limit of a row holding +inf: those entries share the mass equally.
        inf_limit = jnp.where(logits == jnp.inf, 0.0, -jnp.inf).astype(logits.dtype)
    else:
        inf_limit = jnp.zeros((), logits.dtype)
    # Also a double where: rows holding +inf never reach exp as inf - inf.
    u = jnp.where(row_inf, inf_limit, logits - shift)
    total = jnp.sum(jnp.exp(u), axis=axis, keepdims=True)
    total = jnp.where(empty, 1, total)
    return u, total, shift, empty, row_inf, dtype


@jax.jit(static_argnames=("axis",))
def softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    r"""Softmax along ``axis``, defined for every input.

    .. math::
        \operatorname{softmax}(x)_j = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}},
        \qquad m = \max_k x_k

    The shift :math:`m` (over unmasked entries) is under ``stop_gradient``;
    gradients come from autodiff of the shifted form, whose Jacobian is
    :math:`\operatorname{diag}(s) - s s^\top`. Half-precision inputs are
    accumulated in float32.

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
      axis: axis or tuple of axes to normalise over, or None for all (default -1).
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
    u, total, _, _, _, dtype = _shifted(x, axis, where)
    return (jnp.exp(u) / total).astype(dtype)


@jax.jit(static_argnames=("axis",))
def log_softmax(x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None) -> Array:
    r"""Logarithm of :func:`softmax`, computed without forming the softmax.

    .. math::
        \operatorname{log\_softmax}(x)_j = (x_j - m) - \log\sum_k e^{x_k - m},
        \qquad m = \max_k x_k

    Gradients come from autodiff of this form (the shift is under
    ``stop_gradient``). Half-precision inputs are accumulated in float32.

    Edge behaviour:
      - with ``+inf`` entries the result is the log of the limit: ``-log(k)``
        for each of the ``k`` infinite entries, ``-inf`` elsewhere, gradient 0;
      - a row with no usable entry (all ``-inf``, or all masked) gives ``-inf``
        and a zero gradient;
      - masked-out entries give ``-inf`` and never affect values or gradients;
      - NaN in an unmasked entry makes that row NaN, and only that row.

    Args:
      x: logits of any shape (integers and bools are promoted).
      axis: axis or tuple of axes to normalise over, or None for all (default -1).
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
    u, total, _, empty, _, dtype = _shifted(x, axis, where)
    result = jnp.where(empty, -jnp.inf, u - jnp.log(total))
    return result.astype(dtype)


@jax.jit(static_argnames=("axis", "keepdims"))
def logsumexp(
    x: ArrayLike,
    axis: Axis = None,
    where: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Logarithm of the sum of exponentials, computed stably.

    .. math::
        \operatorname{logsumexp}(x) = m + \log\sum_k e^{x_k - m},
        \qquad m = \max_k x_k

    As in ``jax.nn.logsumexp``, ``axis`` defaults to None (reduce over every
    axis). The gradient is :func:`softmax` of the same row, by autodiff of the
    shifted form. Half-precision inputs are accumulated in float32.

    Edge behaviour: a row with a ``+inf`` entry gives ``+inf``; a row with no
    usable entry (all ``-inf``, or all masked) gives ``-inf``; both have a zero
    gradient. Masked-out entries never affect values or gradients. NaN in an
    unmasked entry gives NaN for that row only.

    Args:
      x: input of any shape (integers and bools are promoted).
      axis: axis or tuple of axes to reduce, or None for all (default None).
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
    _, total, shift, empty, row_inf, dtype = _shifted(
        x, axis, where, share_infinite=False
    )
    result = jnp.where(
        empty, -jnp.inf, jnp.where(row_inf, jnp.inf, shift + jnp.log(total))
    )
    if not keepdims:
        result = jnp.squeeze(result, axis=axis)
    return result.astype(dtype)


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
    if not isinstance(axis, int):
        raise TypeError(
            f"softmax_jacobian takes a single integer axis, got {axis!r}; move the "
            "axes you need into one first"
        )
    u, total, _, _, row_inf, dtype = _shifted(x, axis, None)
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
