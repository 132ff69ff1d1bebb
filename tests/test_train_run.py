"""Tests of whole runs in process: determinism, resume, NaN guard, output files."""

import dataclasses
import json
import struct

import jax
import numpy as np
import pytest
from support import synthetic_mnist

from train import outputs, steps
from train.checkpoint import Checkpoints, load_model
from train.config import Config
from train.loop import NonFiniteLossError, fit
from train.model import accuracy
from train.run import train_and_evaluate

METRIC_KEYS = {
    "epoch",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "epoch_seconds",
    "learning_rate",
}
SUMMARY_KEYS = {
    "test_accuracy",
    "best_test_accuracy",
    "epochs",
    "total_seconds",
    "devices",
    "num_params",
}
CONFIG = Config(
    epochs=3,
    batch_size=64,
    hidden=(32, 16),
    dropout=0.1,
    learning_rate=3e-3,
    warmup_epochs=0.5,
    input_dropout=0.0,
    weight_decay=1e-4,
    label_smoothing=0.0,
)


def without_timing(history):
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in history]


def read_scalars(path):
    """(tag, step, value) of every scalar in a TensorBoard event file.

    Reads the TFRecord framing by hand (length, CRC, payload, CRC) and decodes
    each payload with the Event protocol buffer.
    """
    from tensorboardX.proto import event_pb2

    scalars = []
    raw = path.read_bytes()
    offset = 0
    while offset < len(raw):
        (length,) = struct.unpack("<Q", raw[offset : offset + 8])
        payload = raw[offset + 12 : offset + 12 + length]
        offset += 12 + length + 4
        event = event_pb2.Event.FromString(payload)
        for value in event.summary.value:
            scalars.append((value.tag, event.step, value.simple_value))
    return scalars


@pytest.fixture(scope="module")
def data():
    return synthetic_mnist(640, 200)


@pytest.fixture(scope="module")
def reference(data):
    return fit(CONFIG, data)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data):
    workdir = tmp_path_factory.mktemp("run")
    result = train_and_evaluate(CONFIG, workdir, data=data, progress=False)
    return workdir, result


def test_same_seed_gives_identical_metrics(data, reference):
    again = fit(CONFIG, data)
    assert without_timing(again.history) == without_timing(reference.history)


def test_another_seed_gives_other_metrics(data, reference):
    other = fit(dataclasses.replace(CONFIG, seed=7), data)
    assert without_timing(other.history) != without_timing(reference.history)


def test_history_accuracy_is_that_of_the_returned_model(data, reference):
    logits = reference.model(data.test_images)
    expected = float(accuracy(logits, data.test_labels))
    assert reference.history[-1]["test_accuracy"] == pytest.approx(expected)


def test_step_by_step_epochs_match_the_scanned_epochs(data, reference):
    stepped = fit(dataclasses.replace(CONFIG, scan_epoch=False), data)
    for got, want in zip(stepped.history, reference.history, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)
        assert got["test_loss"] == pytest.approx(want["test_loss"], rel=1e-4)


def test_training_learns_the_synthetic_digits(reference):
    # Ten classes: chance is 10%; the templates are far apart, so a trained
    # model separates them almost perfectly.
    assert reference.history[-1]["test_accuracy"] > 0.9


def test_resume_after_interruption_reproduces_the_uninterrupted_run(
    tmp_path, data, reference
):
    def interrupt_after_epoch_two(history):
        if len(history) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(CONFIG, data, workdir=tmp_path, on_epoch_end=interrupt_after_epoch_two)
    resumed = fit(CONFIG, data, workdir=tmp_path, resume=True)
    # Epoch 2 was interrupted before its checkpoint, so it is trained again.
    assert without_timing(resumed.history) == without_timing(reference.history)


def test_resume_without_checkpoint_starts_from_scratch(tmp_path, data, reference):
    resumed = fit(CONFIG, data, workdir=tmp_path, resume=True)
    assert without_timing(resumed.history) == without_timing(reference.history)


# Decoupled weight decay multiplies each weight by 1 - lr * decay per step:
# with lr * decay = 3.5 the weights flip sign and grow 2.5-fold per step until
# they overflow, in the second epoch of 16 steps.
DIVERGING = dataclasses.replace(
    CONFIG, epochs=50, batch_size=40, dropout=0.0, learning_rate=1e-3,
    weight_decay=3500.0, warmup_epochs=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, data):
    workdir = tmp_path_factory.mktemp("diverged")
    with pytest.raises(NonFiniteLossError) as error:
        fit(DIVERGING, data, workdir=workdir)
    return workdir, error.value


def test_nan_guard_names_the_epoch_and_step(diverged):
    _, error = diverged
    assert error.epoch == 2
    assert 1 <= error.step <= 16
    assert f"epoch 2, step {error.step}" in str(error)


def test_nan_guard_keeps_the_last_good_checkpoint(diverged):
    workdir, _ = diverged
    params, opt_state = steps.build(DIVERGING, num_train=640, num_test=200).init()
    checkpoints = Checkpoints(workdir)
    try:
        params, _, record = checkpoints.restore(params, opt_state)
    finally:
        checkpoints.close()
    assert record["epoch"] == 1
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params))


def test_parameters_ruined_by_an_epochs_last_step_are_not_checkpointed(tmp_path, data):
    # One step per epoch: its loss, taken before the update, is finite, but a
    # rate of 1e30 leaves NaN or inf parameters behind it.
    config = dataclasses.replace(
        CONFIG, batch_size=640, optimizer="sgd", learning_rate=1e30,
        warmup_epochs=0.0, dropout=0.0,
    )  # fmt: skip
    epochs_seen = []
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1") as error:
        fit(config, data, workdir=tmp_path, on_epoch_end=epochs_seen.append)
    assert "parameters became NaN or inf" in str(error.value)
    assert error.value.last_good_epoch is None
    assert epochs_seen == []
    checkpoints = Checkpoints(tmp_path)
    try:
        assert checkpoints.latest_epoch() is None
    finally:
        checkpoints.close()


def test_workdir_holds_every_output_file(finished_run):
    workdir, _ = finished_run
    names = {path.name for path in workdir.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "curves.png"} <= names
    assert any(name.startswith("events.out.tfevents.") for name in names)
    assert (workdir / "checkpoints" / "latest").is_dir()
    assert (workdir / "checkpoints" / "best").is_dir()


def test_config_json_holds_the_resolved_config(finished_run):
    workdir, _ = finished_run
    stored = Config.from_json(json.loads((workdir / "config.json").read_text()))
    assert stored == dataclasses.replace(CONFIG, workdir=str(workdir))


def test_metrics_jsonl_has_one_object_per_epoch_with_the_documented_keys(
    finished_run,
):
    workdir, result = finished_run
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert all(set(record) == METRIC_KEYS for record in records)
    assert records == result.history


def test_summary_json_has_the_documented_keys_and_values(finished_run):
    workdir, result = finished_run
    summary = json.loads((workdir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["test_accuracy"] == result.history[-1]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(
        record["test_accuracy"] for record in result.history
    )
    assert summary["epochs"] == 3
    assert summary["resumed_after_epoch"] == 0
    assert summary["devices"] == 1
    # (784*32 + 32) + (32*16 + 16) + (16*10 + 10), counted by hand.
    assert summary["num_params"] == 25_818


def test_tensorboard_events_hold_each_epochs_test_accuracy(finished_run):
    workdir, result = finished_run
    (events,) = workdir.glob("events.out.tfevents.*")
    scalars = read_scalars(events)
    test_accuracy = {
        step: value for tag, step, value in scalars if tag == "test/accuracy"
    }
    expected = {r["epoch"]: r["test_accuracy"] for r in result.history}
    assert test_accuracy == pytest.approx(expected)


def test_tensorboard_tags_group_train_and_test_curves(finished_run):
    workdir, _ = finished_run
    (events,) = workdir.glob("events.out.tfevents.*")
    tags = {tag for tag, _, _ in read_scalars(events)}
    assert tags == {
        "train/loss",
        "train/accuracy",
        "test/loss",
        "test/accuracy",
        "learning_rate",
        "epoch_seconds",
    }


def test_curves_png_is_a_png_image(finished_run):
    workdir, _ = finished_run
    import matplotlib.image

    image = matplotlib.image.imread(workdir / "curves.png")
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_best_checkpoint_holds_the_best_epochs_model(finished_run, data):
    workdir, result = finished_run
    model = load_model(workdir, which="best")
    best = float(accuracy(model(data.test_images), data.test_labels))
    assert best == pytest.approx(result.best_test_accuracy)


def test_workdir_with_another_config_is_refused_and_left_intact(finished_run, data):
    workdir, _ = finished_run
    before = {p: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    with pytest.raises(outputs.WorkdirError, match=r"different config.*epochs: 3"):
        train_and_evaluate(
            dataclasses.replace(CONFIG, epochs=4), workdir, data=data, resume=True
        )
    assert {p: p.read_bytes() for p in workdir.iterdir() if p.is_file()} == before


def test_workdir_with_the_same_run_needs_resume_or_overwrite(finished_run, data):
    workdir, _ = finished_run
    with pytest.raises(outputs.WorkdirError, match="pass --resume"):
        train_and_evaluate(CONFIG, workdir, data=data)


def test_overwrite_replaces_a_run_with_another_config(tmp_path, data):
    train_and_evaluate(CONFIG, tmp_path, data=data, progress=False)
    other = dataclasses.replace(CONFIG, seed=7)
    result = train_and_evaluate(
        other, tmp_path, data=data, overwrite=True, progress=False
    )
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 7


def test_resuming_a_finished_run_trains_nothing_more(finished_run, data):
    workdir, result = finished_run
    resumed = train_and_evaluate(
        CONFIG, workdir, data=data, resume=True, progress=False
    )
    assert resumed.history == result.history
