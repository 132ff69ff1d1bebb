"""Tests that need their own processes: kill -9 and resume, several devices, MNIST."""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import free_port, synthetic_mnist, train_command, write_idx

from train.config import Config
from train.data import MNIST
from train.loop import fit

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = os.environ.get("MNIST_DIR")


def kill_mid_epoch(command: list[str], epoch: int, epochs: int, timeout: float) -> str:
    """Starts ``command`` and SIGKILLs it while the progress bar of ``epoch`` is
    strictly between 5% and 95%; returns what it wrote to stderr."""
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    bar = re.compile(rf"epoch {epoch}/{epochs}:\s+(\d+)%")
    err = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 0.05)
            if ready:
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break
                err += chunk
                percents = [int(p) for p in bar.findall(err.decode(errors="replace"))]
                if any(5 < p < 95 for p in percents):
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    return err.decode(errors="replace")
        raise AssertionError(
            f"never saw epoch {epoch} in progress; stderr:\n{err.decode()[-2000:]}"
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_resume_after_kill_9_mid_epoch_ends_like_an_uninterrupted_run(tmp_path):
    data = synthetic_mnist(24_000, 2_000)
    data_dir = tmp_path / "mnist"
    write_idx(data_dir, data, compress=False)
    workdir = tmp_path / "run"
    flags = [
        "--data-dir", str(data_dir), "--workdir", str(workdir), "--epochs", "4",
        "--batch-size", "128", "--hidden", "512,512", "--dropout", "0.1",
        "--input-dropout", "0", "--weight-decay", "1e-4", "--label-smoothing", "0",
    ]  # fmt: skip

    err = kill_mid_epoch(train_command(*flags), epoch=3, epochs=4, timeout=240)
    assert "epoch 2/4  train loss" in err
    assert "epoch 3/4  train loss" not in err
    # Orbax deletes the previous checkpoint after the next one is complete, so
    # epoch 1 may still be there; unfinished saves are not named by a number.
    latest = workdir / "checkpoints" / "latest"
    assert max(int(p.name) for p in latest.iterdir() if p.name.isdigit()) == 2

    resumed = subprocess.run(
        train_command(*flags, "--resume"), cwd=ROOT, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming after epoch 2" in resumed.stderr
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]

    config = Config(
        epochs=4, batch_size=128, hidden=(512, 512), dropout=0.1, input_dropout=0.0,
        weight_decay=1e-4, label_smoothing=0.0,
    )  # fmt: skip
    uninterrupted = fit(config, data, progress=True)
    summary = json.loads((workdir / "summary.json").read_text())
    expected = uninterrupted.history[-1]["test_accuracy"]
    assert abs(summary["test_accuracy"] - expected) <= 0.001


MULTI_DEVICE_SCRIPT = """
import json, sys
import jax
sys.path.insert(0, {tests!r})
from support import synthetic_mnist
from train import steps
from train.config import Config
from train.loop import fit

config = Config(epochs=2, batch_size=64, hidden=(64, 32), dropout=0.2,
                input_dropout=0.1, learning_rate=2e-3, warmup_epochs=0.5)
data = synthetic_mnist(1024, 300, noise=200)
one = fit(config, data, mesh=steps.make_mesh(jax.devices()[:1]))
four = fit(config, data, mesh=steps.make_mesh())
print(json.dumps({{"devices": [one.devices, four.devices],
                  "one": one.history, "four": four.history}}))
"""


@pytest.mark.slow
def test_four_cpu_devices_give_the_metrics_of_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    script = MULTI_DEVICE_SCRIPT.format(tests=str(ROOT / "tests"))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["devices"] == [1, 4]
    for one, four in zip(report["one"], report["four"], strict=True):
        for key in ("train_loss", "test_loss", "learning_rate"):
            assert four[key] == pytest.approx(one[key], rel=1e-4)
        # Summation order differs across devices: at most one example may flip.
        assert abs(four["test_accuracy"] - one["test_accuracy"]) <= 1 / 300
        assert abs(four["train_accuracy"] - one["train_accuracy"]) <= 1 / 1024


@pytest.mark.slow
@pytest.mark.skipif(
    not MNIST_DIR, reason="MNIST_DIR is unset; point it at the offline MNIST folder"
)
def test_two_quick_epochs_on_real_mnist_reach_95_percent(tmp_path):
    workdir = tmp_path / "run"
    result = subprocess.run(
        train_command("--preset", "quick", "--epochs", "2", "--workdir", str(workdir)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.95
    assert summary["epochs"] == 2


def run_two_processes(tmp_path: Path, data: MNIST, command: list[str]) -> Path:
    """Trains on ``data`` with ``command`` as processes 0 and 1 of one run, two
    CPU devices each; returns the work directory once both exited cleanly."""
    data_dir = tmp_path / "mnist"
    write_idx(data_dir, data, compress=False)
    workdir = tmp_path / "run"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    flags = [
        "--data-dir", str(data_dir), "--workdir", str(workdir), "--epochs", "2",
        "--batch-size", "64", "--hidden", "64,32", "--dropout", "0.2",
        "--learning-rate", "2e-3", "--warmup-epochs", "0.5", "--input-dropout", "0.1",
        "--weight-decay", "1e-4", "--label-smoothing", "0", "--no-progress",
        "--distributed", "--coordinator-address", f"127.0.0.1:{free_port()}",
        "--num-processes", "2",
    ]  # fmt: skip
    logs = [tmp_path / f"process{rank}.log" for rank in (0, 1)]
    processes = []
    for rank, log in enumerate(logs):
        with open(log, "w") as sink:
            processes.append(
                subprocess.Popen(
                    [*command, *flags, "--process-id", str(rank)],
                    cwd=ROOT,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            )
    # Fail as soon as either process fails: its peer would wait for it at the
    # next barrier for minutes.
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process in processes]
            if codes == [0, 0] or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.5)
        for rank, (process, log) in enumerate(zip(processes, logs, strict=True)):
            assert process.poll() == 0, f"process {rank}:\n{log.read_text()}"
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return workdir


# Process 1 plays a slower host: it leaves jax.distributed.initialize 20 s
# after process 0, which by then has checked the work directory, written
# config.json into it and reached the first collective.
SLOW_HOST_SCRIPT = """
import sys, time
import jax

initialize = jax.distributed.initialize

def initialize_late(**kwargs):
    initialize(**kwargs)
    if jax.process_index() == 1:
        time.sleep(20)

jax.distributed.initialize = initialize_late
from train.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_process_that_starts_late_joins_the_run(tmp_path):
    command = [sys.executable, "-c", SLOW_HOST_SCRIPT]
    workdir = run_two_processes(tmp_path, synthetic_mnist(512, 100), command)
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["epochs"], summary["processes"]) == (2, 2)


@pytest.mark.slow
def test_two_processes_of_two_devices_train_like_one_device(tmp_path):
    data = synthetic_mnist(1024, 300, noise=200)
    workdir = run_two_processes(tmp_path, data, train_command())
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["devices"], summary["processes"]) == (4, 2)
    config = Config(
        epochs=2, batch_size=64, hidden=(64, 32), dropout=0.2, input_dropout=0.1,
        learning_rate=2e-3, warmup_epochs=0.5, weight_decay=1e-4, label_smoothing=0.0,
    )  # fmt: skip
    one_device = fit(config, data)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    for line, expected in zip(lines, one_device.history, strict=True):
        record = json.loads(line)
        for key in ("train_loss", "test_loss"):
            assert record[key] == pytest.approx(expected[key], rel=1e-4)
        assert abs(record["test_accuracy"] - expected["test_accuracy"]) <= 1 / 300
