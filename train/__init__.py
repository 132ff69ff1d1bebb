"""Flax NNX MLP trainer for MNIST: ``python -m train`` or the functions below.

Data (``train.data``): ``load_mnist(data_dir=None) -> MNIST`` reads the four IDX
files of ``data_dir`` (or ``$MNIST_DIR``; TensorFlow Datasets when neither is
set) into uint8 images ``(N, 28, 28, 1)`` and int32 labels, validated;
``read_idx(path)`` decodes one IDX file; every failure is a ``DataError``.

Model (``train.model``): ``MLP(hidden=(512, 512), activation="relu",
dropout=0.0, num_classes=10, *, rngs)`` maps uint8 or float images to logits
(``normalize`` is its only input step) and exposes ``hidden_layers``,
``output`` and ``hidden_activations(images)``; ``cross_entropy_loss`` (built
on ``jax_acts.log_softmax``) and ``accuracy`` score logits against labels.

Configuration (``train.config``): the frozen ``Config``, ``PRESETS``
(``"default"``, ``"quick"``) and ``check(config)``.

Training (``train.loop``, ``train.run``): ``fit(config, data, *, workdir=None,
resume=False, mesh=None, progress=False, on_epoch_end=None) -> FitResult``
(trained model, per-epoch history, best accuracy) trains in memory, and
checkpoints when given a work directory; ``train_and_evaluate(config,
workdir=None, ...)`` runs ``fit`` and writes every output file.
``train.checkpoint.load_model(workdir)`` reloads a trained model.

Building blocks (``train.steps``): ``build(config, *, num_train, num_test,
mesh=None)`` returns ``TrainFunctions`` with the jitted ``init``,
``train_epoch`` (a whole epoch in one ``lax.scan``), ``train_step`` (one
dispatch per step), ``batch_step``, ``shuffle`` and ``evaluate``;
``put_data(data, mesh)`` makes the uint8 dataset resident on every device;
``make_optimizer(config, steps_per_epoch)`` gives the Optax optimizer and its
schedule; ``make_mesh(devices)`` the one-axis data-parallel mesh.

Multi-host: start one process per host with ``--distributed`` (see
``train.cli``); nothing initialises ``jax.distributed`` unless asked.
"""
