"""Input handling shared by every activation: integer and bool inputs become the
default float type, and floats narrower than float32 (float16, bfloat16, the
float8 types) are computed in float32."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike


def as_float(x: ArrayLike) -> Array:
    """Returns ``x`` as a floating array, promoting integers and bools.

    Raises:
      TypeError: for complex or other non-real inputs, naming the dtype.
    """
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return x.astype(jax.dtypes.canonicalize_dtype(float))
    raise TypeError(
        f"expected a real (float, integer or bool) array, got dtype {x.dtype}; "
        "pass the real part or cast to a float dtype first"
    )


def work_dtype(dtype: jnp.dtype) -> jnp.dtype:
    """The precision arithmetic runs in: float32 for any float narrower than it.

    float8 types have no infinity or too few exponent bits for the intermediate
    exponentials, and XLA lacks some of their kernels (erfc), so they are widened
    like float16 and bfloat16.
    """
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def lift(kernel: Callable[..., Array], x: ArrayLike, *params: ArrayLike) -> Array:
    """Applies ``kernel`` in work precision and returns the input's float dtype.

    ``params`` (slopes, scales) are cast to the work precision, so a Python float
    parameter never promotes a float32 input to float64.
    """
    x = as_float(x)
    work = work_dtype(x.dtype)
    cast_params = [jnp.asarray(p, dtype=work) for p in params]
    return kernel(x.astype(work), *cast_params).astype(x.dtype)


def check_positive(name: str, value: ArrayLike, why: str) -> None:
    """Raises ValueError unless every value of a concrete ``value`` is a positive
    finite number; ``why`` says what a bad one would break.

    A traced value cannot be checked and passes: under ``jit`` the parameter is
    the caller's responsibility.
    """
    if isinstance(value, jax.core.Tracer):
        return
    # Concrete values of any kind (Python, NumPy or JAX) are checked here.
    concrete = np.asarray(value)
    if concrete.dtype.kind not in "biuf" or not np.all(
        (concrete > 0) & np.isfinite(concrete)
    ):
        raise ValueError(
            f"{name} must be a positive finite number (or array of them), got "
            f"{value!r}; {why}"
        )
