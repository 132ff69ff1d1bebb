"""Shared test inputs: grids of floating-point values covering a dtype's whole
finite range, from the smallest subnormal to the largest finite value."""

import functools

import jax.numpy as jnp
import numpy as np
import pytest


@functools.cache
def _finite_grid(dtype_name: str) -> np.ndarray:
    dtype = jnp.dtype(dtype_name)
    if dtype.itemsize == 2:
        # Every finite value of a 16-bit float: the test is exhaustive.
        values = np.arange(2**16, dtype=np.uint16).view(dtype)
        return values[np.isfinite(values)]

    finfo = np.finfo(dtype)
    # Dense and uniform where activations bend, then every binade out to the
    # largest finite value, then random bit patterns for the space in between.
    uniform = np.linspace(-100, 100, 200_001)
    magnitudes = np.geomspace(float(finfo.smallest_subnormal), float(finfo.max), 20_001)
    rng = np.random.default_rng(0)
    int_type = np.uint32 if dtype.itemsize == 4 else np.uint64
    bits = rng.integers(0, np.iinfo(int_type).max, size=100_000, dtype=int_type)
    random_values = bits.view(dtype)
    edges = np.array([0.0, finfo.max, -finfo.max, finfo.smallest_normal])
    values = np.concatenate(
        [
            uniform.astype(dtype),
            magnitudes.astype(dtype),
            -magnitudes.astype(dtype),
            random_values,
            edges.astype(dtype),
        ]
    )
    return np.unique(values[np.isfinite(values)])


@pytest.fixture
def finite_grid():
    """Returns ``make(dtype)``: sorted finite values spanning the dtype's range.

    Exhaustive for 16-bit floats; for wider floats, a dense uniform grid on
    [-100, 100], log-spaced magnitudes from the smallest subnormal to the largest
    value, and 100 000 random bit patterns.
    """
    return lambda dtype: _finite_grid(jnp.dtype(dtype).name)
