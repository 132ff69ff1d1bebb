"""The MNIST classifier: a Flax NNX multilayer perceptron, its loss and accuracy."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import jax_acts

NUM_PIXELS = 28 * 28

# Mean and standard deviation of the MNIST training pixels scaled to [0, 1].
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081

# Activations that saturate on both sides keep Glorot's initialisation; He's
# variance suits the rectifier family (ReLU and its smooth relatives), which
# zero or shrink about half their inputs; SELU's fixed point assumes LeCun's.
SATURATING = frozenset(
    {
        "algebraic_sigmoid",
        "arctan",
        "erf",
        "generalized_logistic",
        "gudermannian",
        "hard_sigmoid",
        "hard_tanh",
        "sigmoid",
        "soft_sign",
        "tanh",
    }
)


def kernel_init(activation: str) -> nnx.Initializer:
    """The hidden layers' weight initialiser for ``activation``.

    Glorot uniform for saturating activations (``SATURATING``), LeCun normal for
    SELU, He normal for everything else (the rectifier family).

    References:
      He et al., *Delving Deep into Rectifiers*, 2015, arXiv:1502.01852.
      Glorot and Bengio, *Understanding the difficulty of training deep
      feedforward neural networks*, AISTATS 2010.
      Klambauer et al., *Self-Normalizing Neural Networks*, 2017,
      arXiv:1706.02515.
    """
    if activation in SATURATING:
        return nnx.initializers.glorot_uniform()
    if activation == "selu":
        return nnx.initializers.lecun_normal()
    return nnx.initializers.he_normal()


def intensities(images: jax.Array) -> jax.Array:
    """Flattens images to float32 ``[batch, 784]`` intensities in [0, 1].

    Integer images are pixel values 0..255 and are divided by 255; floating
    images are taken to be intensities already.

    Args:
      images: ``[batch, 28, 28, 1]``, ``[batch, 28, 28]`` or ``[batch, 784]``.
    """
    images = jnp.asarray(images)
    if images.size // images.shape[0] != NUM_PIXELS:
        raise ValueError(
            f"images of shape {images.shape}, expected [batch, 28, 28, 1] or "
            f"[batch, {NUM_PIXELS}]"
        )
    x = images.reshape(images.shape[0], NUM_PIXELS)
    if jnp.issubdtype(x.dtype, jnp.integer):
        return x.astype(jnp.float32) * (1.0 / 255.0)
    return x.astype(jnp.float32)


def standardize(x: jax.Array) -> jax.Array:
    """Maps intensities to ``(x - PIXEL_MEAN) / PIXEL_STD``."""
    return (x - PIXEL_MEAN) * (1.0 / PIXEL_STD)


def normalize(images: jax.Array) -> jax.Array:
    """The model's input step: ``standardize(intensities(images))``.

    Args:
      images: ``[batch, 28, 28, 1]``, ``[batch, 28, 28]`` or ``[batch, 784]``,
        integer pixel values 0..255 or floating intensities in [0, 1].

    Returns:
      float32 ``[batch, 784]``.
    """
    return standardize(intensities(images))


class MLP(nnx.Module):
    """784 inputs, fully connected hidden layers, ``num_classes`` logits.

    Args:
      hidden: sizes of the hidden layers, default ``(512, 512)``.
      activation: hidden activation, any name ``jax_acts.names()`` lists
        (default ``"relu"``); it also picks the initialisation (see
        ``kernel_init``).
      dropout: probability of dropping each hidden unit while training
        (default 0.0, no dropout).
      num_classes: number of output logits (default 10).
      input_dropout: probability of dropping each input pixel while training,
        to background (intensity 0) before standardisation (default 0.0).
      rngs: random streams; ``rngs.params`` initialises the weights.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (512, 512),
        activation: str = "relu",
        dropout: float = 0.0,
        num_classes: int = 10,
        *,
        input_dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        self.activation_name = activation
        self.activation = jax_acts.get(activation)
        self.dropout_rate = float(dropout)
        init = kernel_init(activation)
        sizes = (NUM_PIXELS, *hidden)
        self.hidden_layers = nnx.List(
            [
                nnx.Linear(fan_in, fan_out, kernel_init=init, rngs=rngs)
                for fan_in, fan_out in itertools.pairwise(sizes)
            ]
        )
        self.dropout = nnx.Dropout(self.dropout_rate)
        self.input_dropout_rate = float(input_dropout)
        self.input_dropout = nnx.Dropout(self.input_dropout_rate)
        self.output = nnx.Linear(
            sizes[-1],
            num_classes,
            kernel_init=nnx.initializers.glorot_uniform(),
            rngs=rngs,
        )

    def hidden_activations(
        self, images: jax.Array, *, dropout_key: jax.Array | None = None
    ) -> list[jax.Array]:
        """Post-activation output of each hidden layer, ``[batch, size]`` each.

        Args:
          images: see ``normalize``.
          dropout_key: a PRNG key turns dropout on (training); None (the
            default) turns it off.
        """
        x = intensities(images)
        input_key, hidden_key = (
            jax.random.split(dropout_key) if dropout_key is not None else (None, None)
        )
        if input_key is not None and self.input_dropout_rate > 0.0:
            x = self.input_dropout(x, deterministic=False, rngs=input_key)
        x = standardize(x)
        activations = []
        for i, layer in enumerate(self.hidden_layers):
            x = self.activation(layer(x))
            if hidden_key is not None and self.dropout_rate > 0.0:
                layer_key = jax.random.fold_in(hidden_key, i)
                x = self.dropout(x, deterministic=False, rngs=layer_key)
            activations.append(x)
        return activations

    def __call__(
        self, images: jax.Array, *, dropout_key: jax.Array | None = None
    ) -> jax.Array:
        """Logits ``[batch, num_classes]`` of images (see ``normalize``).

        Args:
          images: ``[batch, 28, 28, 1]`` or ``[batch, 784]``, uint8 or float.
          dropout_key: a PRNG key turns dropout on (training); None (the
            default) evaluates deterministically.
        """
        return self.output(self.hidden_activations(images, dropout_key=dropout_key)[-1])


def count_params(model: nnx.Module) -> int:
    """Number of scalar parameters in ``model``."""
    params = nnx.state(model, nnx.Param)
    return sum(x.size for x in jax.tree.leaves(params))


def _check_logits_labels(logits: jax.Array, labels: jax.Array) -> None:
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"logits must be floating, got dtype {logits.dtype}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {logits.shape} and labels {labels.shape} disagree; expected "
            "logits [batch, num_classes] and labels [batch]"
        )


def softmax_cross_entropy(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0
) -> jax.Array:
    """Per-example cross-entropy of integer labels under softmax(logits).

    Args:
      logits: ``[batch, num_classes]``, unnormalised log-probabilities.
      labels: ``[batch]`` integer classes in ``0..num_classes-1``; the data
        pipeline validates the range, since an index out of range would
        silently read a fill value here.
      label_smoothing: target probability moved from the label to a uniform
        spread over all classes.

    Returns:
      ``[batch]`` losses, ``-log softmax(logits)[label]`` without smoothing.
    """
    _check_logits_labels(logits, labels)
    log_probs = jax_acts.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    if label_smoothing == 0.0:
        return nll
    return (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(axis=-1)


def cross_entropy_loss(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0
) -> jax.Array:
    """Mean softmax cross-entropy over the batch (see ``softmax_cross_entropy``)."""
    return softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose largest logit is at the label.

    Args:
      logits: ``[batch, num_classes]``.
      labels: ``[batch]`` integer classes.
    """
    _check_logits_labels(logits, labels)
    return (jnp.argmax(logits, axis=-1) == labels).mean()
