"""The compiled pieces of training: optimizer, train step, scanned epoch, evaluation.

Parameters and the whole dataset are replicated on every device; each batch is
sharded over a one-axis ``("data",)`` mesh, so the same functions run on one CPU,
several GPUs or TPU hosts. Images stay uint8 on the device and are normalised
inside the model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from train.config import Config
from train.model import (
    MLP,
    NUM_PIXELS,
    accuracy,
    cross_entropy_loss,
    softmax_cross_entropy,
)

DATA_AXIS = "data"
# Test examples per evaluation chunk (rounded up to a multiple of the devices).
EVAL_CHUNK = 1000


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh over ``devices`` (default: every device of every process)."""
    return Mesh(
        np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,)
    )


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that puts a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def steps_per_epoch(config: Config, num_train: int) -> int:
    """Full batches per epoch; the remainder of each shuffled epoch is dropped."""
    return num_train // config.batch_size


def make_schedule(config: Config, num_steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up from 0 to the peak learning rate, then cosine decay to 0."""
    total_steps = config.epochs * num_steps_per_epoch
    # A warm-up as long as the run leaves one step of decay: the cosine needs at
    # least one, and the peak is then reached on the last step.
    warmup_steps = min(
        round(config.warmup_epochs * num_steps_per_epoch), total_steps - 1
    )
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=total_steps,
        end_value=0.0,
    )


def _decay_mask(params: Any) -> Any:
    # Decaying biases only shifts units' thresholds towards zero; weight matrices
    # are what decay is meant to shrink.
    return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(
    config: Config, num_steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The configured optimizer and its learning-rate schedule.

    AdamW applies decoupled weight decay; SGD uses momentum and adds the decay
    to the gradient. Both decay weight matrices only, and clip the gradients'
    global norm first when ``config.grad_clip`` is positive.
    """
    schedule = make_schedule(config, num_steps_per_epoch)
    if config.optimizer == "adamw":
        tx = optax.adamw(schedule, weight_decay=config.weight_decay, mask=_decay_mask)
    elif config.optimizer == "sgd":
        tx = optax.chain(
            optax.add_decayed_weights(config.weight_decay, mask=_decay_mask),
            optax.sgd(schedule, momentum=config.momentum, nesterov=True),
        )
    else:
        raise ValueError(f"optimizer must be adamw or sgd, got {config.optimizer!r}")
    if config.grad_clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), tx)
    return tx, schedule


def init_model(config: Config) -> MLP:
    """The configured MLP, initialised from ``config.seed``."""
    key = jax.random.fold_in(jax.random.key(config.seed), 0)
    return MLP(
        config.hidden,
        config.activation,
        config.dropout,
        input_dropout=config.input_dropout,
        rngs=nnx.Rngs(params=key),
    )


def epoch_keys(seed: int, epoch: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The shuffling and dropout keys of ``epoch`` (1-based).

    Derived from the seed and the epoch alone, so a resumed run draws the same
    batches and dropout masks as an uninterrupted one.
    """
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), epoch)
    shuffle_key, dropout_key = jax.random.split(key)
    return shuffle_key, dropout_key


TrainStep = Callable[..., tuple[Any, Any, dict[str, jax.Array]]]


def project_max_norm(params: Any, max_norm: float) -> Any:
    """Rescales each unit's incoming weight vector to an L2 norm <= ``max_norm``.

    Kernels are ``[fan_in, fan_out]``, so a unit's incoming weights are a
    column; biases are left alone.

    References:
      Srivastava et al., *Dropout: A Simple Way to Prevent Neural Networks from
      Overfitting*, JMLR 15, 2014, section 5.1.
    """

    def project(p):
        if p.ndim < 2:
            return p
        norms = jnp.sqrt(jnp.sum(jnp.square(p), axis=0, keepdims=True))
        # Columns already inside the ball keep a factor of exactly 1.
        return p * jnp.minimum(1.0, max_norm / jnp.maximum(norms, max_norm))

    return jax.tree.map(project, params)


def make_train_step(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    *,
    label_smoothing: float = 0.0,
    max_norm: float = 0.0,
) -> TrainStep:
    """A pure step ``(params, opt_state, images, labels, dropout_key) -> new ones``.

    ``dropout_key`` None trains without dropout; a positive ``max_norm``
    projects the updated weights (see ``project_max_norm``). The returned
    metrics are the batch's mean ``loss`` and ``accuracy`` before the update.
    """

    def train_step(params, opt_state, images, labels, dropout_key):
        def loss_fn(params):
            model = nnx.merge(graphdef, params)
            logits = model(images, dropout_key=dropout_key)
            loss = cross_entropy_loss(logits, labels, label_smoothing=label_smoothing)
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if max_norm > 0:
            params = project_max_norm(params, max_norm)
        return params, opt_state, {"loss": loss, "accuracy": accuracy(logits, labels)}

    return train_step


@dataclasses.dataclass(frozen=True)
class DeviceData:
    """MNIST resident on the devices: uint8 ``[N, 784]`` images, int32 labels.

    The test split is padded to whole evaluation chunks; ``num_test`` counts the
    real examples.
    """

    train_images: jax.Array
    train_labels: jax.Array
    test_images: jax.Array
    test_labels: jax.Array
    num_test: int

    @property
    def num_train(self) -> int:
        return int(self.train_images.shape[0])


def eval_chunk(mesh: Mesh) -> int:
    """Test examples per evaluation step, a multiple of the device count."""
    return math.ceil(EVAL_CHUNK / mesh.size) * mesh.size


def _put_replicated(array: np.ndarray, mesh: Mesh) -> jax.Array:
    # Every process holds the full array, so each device can be filled from the
    # local copy; this works across hosts, unlike device_put of one host's array.
    array = np.ascontiguousarray(array)
    return jax.make_array_from_callback(
        array.shape, replicated(mesh), lambda index: array[index]
    )


def put_data(data: Any, mesh: Mesh) -> DeviceData:
    """Copies MNIST (``train.data.MNIST``) to every device of ``mesh``, as uint8."""
    train_images = data.train_images.reshape(len(data.train_images), NUM_PIXELS)
    test_images = data.test_images.reshape(len(data.test_images), NUM_PIXELS)
    num_test = len(test_images)
    padded = math.ceil(num_test / eval_chunk(mesh)) * eval_chunk(mesh)
    test_images = np.pad(test_images, ((0, padded - num_test), (0, 0)))
    test_labels = np.pad(data.test_labels, (0, padded - num_test))
    return DeviceData(
        train_images=_put_replicated(train_images.astype(np.uint8), mesh),
        train_labels=_put_replicated(data.train_labels.astype(np.int32), mesh),
        test_images=_put_replicated(test_images.astype(np.uint8), mesh),
        test_labels=_put_replicated(test_labels.astype(np.int32), mesh),
        num_test=num_test,
    )


def shuffled_batches(
    key: jax.Array, num_train: int, batch_size: int, num_steps: int, mesh: Mesh
) -> jax.Array:
    """``[num_steps, batch_size]`` example indices, a fresh permutation per key."""
    order = jax.random.permutation(key, num_train)[: num_steps * batch_size]
    batches = order.reshape(num_steps, batch_size)
    return jax.lax.with_sharding_constraint(
        batches, NamedSharding(mesh, P(None, DATA_AXIS))
    )


@dataclasses.dataclass(frozen=True)
class Progress:
    """Receives the number of finished steps from inside a compiled epoch.

    ``update`` runs on the host every ``every`` steps, through
    ``jax.debug.callback``.
    """

    update: Callable[[int], None]
    every: int


@dataclasses.dataclass(frozen=True)
class TrainFunctions:
    """The jitted functions of one configuration (see ``build``).

    Images and labels are the resident ``DeviceData`` arrays; ``epoch`` is the
    1-based epoch number (an int or int32 scalar), from which the shuffling and
    dropout keys derive. Training functions donate ``params`` and ``opt_state``:
    use the returned ones.

    Attributes:
      graphdef: the MLP's structure; ``nnx.merge(graphdef, params)`` is a model.
      tx: the optimizer (``make_optimizer``).
      schedule: its learning rate per step.
      num_steps: steps per epoch.
      mesh: devices the batch is sharded over.
      init: ``() -> (params, opt_state)``, replicated on every device.
      train_epoch: ``(params, opt_state, images, labels, epoch) -> (params,
        opt_state, metrics)``; shuffles, then runs every step in one
        ``lax.scan``. Metrics: mean train ``loss`` and ``accuracy``,
        ``learning_rate`` of the last step, and ``first_bad_step``, the 0-based
        step whose loss was first NaN or inf (-1 when none was).
      shuffle: ``(epoch) -> [num_steps, batch_size]`` example indices, the
        batches ``train_epoch`` draws.
      train_step: ``(params, opt_state, images, labels, batches, epoch,
        step_number) -> (params, opt_state, metrics)``: one step, one dispatch
        from Python, on the batch ``images[batches[step_number]]`` where
        ``batches`` comes from ``shuffle``; metrics ``loss`` and ``accuracy``
        of the batch.
      batch_step: ``(params, opt_state, images, labels, dropout_key) ->
        (params, opt_state, metrics)`` on a batch passed in (dropout key None
        without dropout).
      learning_rate: ``(epoch) -> learning rate of the epoch's last step``.
      evaluate: ``(params, images, labels) -> {"loss", "accuracy"}`` over the
        padded test split of ``put_data``.
    """

    graphdef: nnx.GraphDef
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    num_steps: int
    mesh: Mesh
    init: Callable[[], tuple[Any, Any]]
    train_epoch: Callable[..., tuple[Any, Any, dict[str, jax.Array]]]
    shuffle: Callable[..., jax.Array]
    train_step: Callable[..., tuple[Any, Any, dict[str, jax.Array]]]
    batch_step: Callable[..., tuple[Any, Any, dict[str, jax.Array]]]
    learning_rate: Callable[..., jax.Array]
    evaluate: Callable[..., dict[str, jax.Array]]


def build(
    config: Config,
    *,
    num_train: int,
    num_test: int,
    mesh: Mesh | None = None,
    progress: Progress | None = None,
) -> TrainFunctions:
    """Jits every function that trains and evaluates ``config``'s model.

    Equal arguments return the same (cached) functions, so repeated runs of one
    configuration in a process compile once; where the data and outputs live,
    and whether the loop scans, do not enter the cache key.

    Args:
      config: model, optimizer and batch settings.
      num_train: training examples (fixes the steps per epoch).
      num_test: real (unpadded) test examples that ``evaluate`` counts.
      mesh: devices to shard each batch over (default: all).
      progress: advanced from inside ``train_epoch``.
    """
    mesh = mesh if mesh is not None else make_mesh()
    key = dataclasses.replace(
        config,
        preset=Config.preset,
        data_dir=None,
        workdir=Config.workdir,
        scan_epoch=Config.scan_epoch,
    )
    return _build(key, num_train, num_test, mesh, progress)


@functools.lru_cache(maxsize=16)
def _build(
    config: Config,
    num_train: int,
    num_test: int,
    mesh: Mesh,
    progress: Progress | None,
) -> TrainFunctions:
    num_steps = steps_per_epoch(config, num_train)
    tx, schedule = make_optimizer(config, num_steps)
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: init_model(config)))
    pure_step = make_train_step(
        graphdef,
        tx,
        label_smoothing=config.label_smoothing,
        max_norm=config.max_norm,
    )
    use_dropout = config.dropout > 0 or config.input_dropout > 0
    batch_sharding = NamedSharding(mesh, P(DATA_AXIS))

    def init():
        params = nnx.state(init_model(config))
        return params, tx.init(params)

    def shuffle(epoch):
        shuffle_key, _ = epoch_keys(config.seed, epoch)
        return shuffled_batches(
            shuffle_key, num_train, config.batch_size, num_steps, mesh
        )

    def learning_rate(epoch):
        return schedule(epoch * num_steps - 1)

    def train_step(params, opt_state, images, labels, batches, epoch, step_number):
        return indexed_step(
            params, opt_state, images, labels, batches[step_number], epoch, step_number
        )

    def indexed_step(params, opt_state, images, labels, index, epoch, step_number):
        # Indices are sharded over the batch, so each device gathers only its part.
        batch_images = jax.lax.with_sharding_constraint(images[index], batch_sharding)
        batch_labels = jax.lax.with_sharding_constraint(labels[index], batch_sharding)
        key = None
        if use_dropout:
            _, dropout_key = epoch_keys(config.seed, epoch)
            key = jax.random.fold_in(dropout_key, step_number)
        return pure_step(params, opt_state, batch_images, batch_labels, key)

    def train_epoch(params, opt_state, images, labels, epoch):
        def body(carry, inputs):
            params, opt_state, first_bad_step = carry
            step_number, index = inputs
            params, opt_state, metrics = indexed_step(
                params, opt_state, images, labels, index, epoch, step_number
            )
            bad = ~jnp.isfinite(metrics["loss"]) & (first_bad_step < 0)
            first_bad_step = jnp.where(bad, step_number, first_bad_step)
            if progress is not None:
                jax.lax.cond(
                    (step_number + 1) % progress.every == 0,
                    lambda: jax.debug.callback(progress.update, step_number + 1),
                    lambda: None,
                )
            return (params, opt_state, first_bad_step), metrics

        carry = (params, opt_state, jnp.int32(-1))
        inputs = (jnp.arange(num_steps, dtype=jnp.int32), shuffle(epoch))
        (params, opt_state, first_bad_step), metrics = jax.lax.scan(body, carry, inputs)
        summary = {name: values.mean() for name, values in metrics.items()}
        summary["learning_rate"] = learning_rate(epoch)
        summary["first_bad_step"] = first_bad_step
        return params, opt_state, summary

    replicated_sharding = replicated(mesh)
    return TrainFunctions(
        graphdef=graphdef,
        tx=tx,
        schedule=schedule,
        num_steps=num_steps,
        mesh=mesh,
        init=jax.jit(init, out_shardings=replicated_sharding),
        train_epoch=jax.jit(train_epoch, donate_argnums=(0, 1)),
        shuffle=jax.jit(shuffle),
        train_step=jax.jit(train_step, donate_argnums=(0, 1)),
        batch_step=jax.jit(pure_step, donate_argnums=(0, 1)),
        learning_rate=jax.jit(learning_rate),
        evaluate=make_evaluate(graphdef, mesh=mesh, num_examples=num_test),
    )


def make_evaluate(
    graphdef: nnx.GraphDef, *, mesh: Mesh, num_examples: int
) -> Callable[..., dict[str, jax.Array]]:
    """A jitted ``(params, images, labels) -> {"loss", "accuracy"}`` over a split.

    ``images`` and ``labels`` are padded to whole chunks (see ``put_data``); only
    the first ``num_examples`` count.
    """
    chunk = eval_chunk(mesh)
    chunk_sharding = NamedSharding(mesh, P(None, DATA_AXIS))

    def evaluate(params, images, labels):
        model = nnx.merge(graphdef, params)
        num_chunks = images.shape[0] // chunk
        valid = jnp.arange(images.shape[0]) < num_examples
        chunks = jax.tree.map(
            lambda a: jax.lax.with_sharding_constraint(
                a.reshape(num_chunks, chunk, *a.shape[1:]), chunk_sharding
            ),
            (images, labels, valid),
        )

        def body(totals, inputs):
            chunk_images, chunk_labels, chunk_valid = inputs
            logits = model(chunk_images)
            losses = softmax_cross_entropy(logits, chunk_labels)
            correct = jnp.argmax(logits, axis=-1) == chunk_labels
            loss_sum = jnp.where(chunk_valid, losses, 0.0).sum()
            correct_sum = jnp.where(chunk_valid, correct, False).sum()
            return (totals[0] + loss_sum, totals[1] + correct_sum), None

        totals = (jnp.float32(0.0), jnp.int32(0))
        (loss_sum, correct_sum), _ = jax.lax.scan(body, totals, chunks)
        return {"loss": loss_sum / num_examples, "accuracy": correct_sum / num_examples}

    return jax.jit(evaluate)
