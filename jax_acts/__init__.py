"""Activation functions for JAX whose derivatives stay accurate in the tails and
defined at the edges: the sigmoid family, rectifiers and softmax normalisers."""

from jax_acts._algebraic_sigmoids import (
    algebraic_sigmoid,
    hard_sigmoid,
    hard_tanh,
    soft_sign,
)
from jax_acts._rectifiers import celu, elu, leaky_relu, relu, relu6, selu
from jax_acts._sigmoid import (
    arctan,
    erf,
    generalized_logistic,
    gudermannian,
    log_sigmoid,
    sigmoid,
    tanh,
)
from jax_acts._smooth_rectifiers import gelu, mish, silu, softplus, swish
from jax_acts._softmax import log_softmax, logsumexp, softmax, softmax_jacobian
from jax_acts._tools import derivative, get, names

__all__ = [
    "algebraic_sigmoid",
    "arctan",
    "celu",
    "derivative",
    "elu",
    "erf",
    "gelu",
    "generalized_logistic",
    "get",
    "gudermannian",
    "hard_sigmoid",
    "hard_tanh",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mish",
    "names",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_sign",
    "softmax",
    "softmax_jacobian",
    "softplus",
    "swish",
    "tanh",
]
