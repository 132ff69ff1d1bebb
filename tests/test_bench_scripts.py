"""Tests of the benchmark scripts: the shared timing helpers on a fake clock, the
FLOP count and synthetic data of the training benchmark, and both scripts run
in --quick mode with and without PyTorch, checked for structure, never speed."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
if str(SCRIPTS) not in sys.path:
    # The scripts import their shared helper as a sibling module.
    sys.path.insert(0, str(SCRIPTS))

import _bench_common as common  # noqa: E402
import bench_activations  # noqa: E402
import bench_train  # noqa: E402

import jax_acts as A  # noqa: E402
from train.data import load_mnist  # noqa: E402

NORMALISERS = ("softmax", "log_softmax", "logsumexp")


def positive_finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


class FakeClock:
    """A ``perf_counter`` that moves only when a contender runs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def contender(self, seconds: float, log: list[str] | None = None, name: str = ""):
        def run():
            self.now += seconds
            if log is not None:
                log.append(name)

        return run


# --- shared helpers --------------------------------------------------------------


def test_alternate_starts_each_round_one_contender_later():
    log: list[str] = []
    clock = FakeClock()
    contenders = {name: clock.contender(1.0, log, name) for name in "abc"}

    common.alternate(contenders, repeats=4)

    assert log == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]


def test_alternate_returns_one_sample_per_round_for_each_contender():
    clock = FakeClock()
    contenders = {name: clock.contender(1.0) for name in ("ours", "theirs")}

    samples = common.alternate(contenders, repeats=5)

    assert {name: len(values) for name, values in samples.items()} == {
        "ours": 5,
        "theirs": 5,
    }


def test_alternate_sample_is_the_mean_seconds_per_call(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    contenders = {"ours": clock.contender(0.25), "theirs": clock.contender(2.0)}

    samples = common.alternate(contenders, repeats=2, number={"ours": 8, "theirs": 1})

    assert samples == {"ours": [0.25, 0.25], "theirs": [2.0, 2.0]}


def test_calls_per_sample_fills_the_minimum_sample_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    contenders = {"fast": clock.contender(0.001), "slow": clock.contender(0.5)}

    number = common.calls_per_sample(contenders, min_sample_seconds=0.02)

    assert number == {"fast": 20, "slow": 1}


def test_median_of_an_even_count_is_the_midpoint_of_the_middle_two():
    assert common.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_no_timings_raises():
    with pytest.raises(ValueError, match="no timings"):
        common.median([])


def test_ratio_is_none_when_either_side_was_not_measured():
    assert (common.ratio(None, 2.0), common.ratio(2.0, None)) == (None, None)


def test_markdown_table_prints_a_missing_cell_as_a_dash():
    table = common.markdown_table(["a", "b"], [[1, None]])

    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | — |"]


def test_verdict_of_an_at_least_target_below_its_limit_is_missed():
    assert common.verdict(0.79, 0.8, at_least=True) == "missed"


def test_verdict_of_an_unmeasured_target_says_so():
    assert common.verdict(None, 1.0) == "not measured"


def test_write_report_refuses_a_file_as_output_directory_and_leaves_it(tmp_path):
    existing = tmp_path / "results"
    existing.write_text("keep me")

    with pytest.raises(SystemExit, match="existing file"):
        common.write_report(existing, "bench", {"a": 1}, "text")
    assert existing.read_text() == "keep me"


def test_write_report_writes_json_that_reads_back(tmp_path):
    path = common.write_report(tmp_path / "out", "bench", {"ratio": 0.5}, "| t |")

    assert json.loads(path.read_text()) == {"ratio": 0.5}


def test_load_torch_left_out_on_request_returns_none():
    torch, note = common.load_torch(wanted=False)

    assert (torch, note) == (None, "left out (--no-torch)")


def test_environment_names_the_device_jax_uses():
    env = common.environment(None, "left out")

    assert (env["device_kind"], env["gpu"]) == (
        jax.devices()[0].device_kind,
        jax.devices()[0].platform == "gpu",
    )


# --- pieces of the two scripts ---------------------------------------------------


def test_epoch_flops_are_three_times_the_forward_matmuls():
    config = bench_train.bench_config(epochs=1, seed=0)
    # 784-512-512-10: 2 * (784*512 + 512*512 + 512*10) = 1,337,344 per image.
    expected = 3 * 1_337_344 * 59_904

    assert bench_train.epoch_flops(config, 59_904)["three_x_forward"] == expected


def test_epoch_flops_needed_leave_out_the_first_layers_input_gradient():
    config = bench_train.bench_config(epochs=1, seed=0)
    expected = (3 * 1_337_344 - 2 * 784 * 512) * 100

    assert bench_train.epoch_flops(config, 100)["needed"] == expected


def test_bench_model_drops_nothing_as_the_pytorch_side_does():
    # The PyTorch contender has no dropout layer; random masks on our side only
    # would charge it for work the other side skips.
    config = bench_train.bench_config(epochs=1, seed=0)

    assert (config.dropout, config.input_dropout, config.label_smoothing) == (0, 0, 0)


def test_synthetic_mnist_has_mnists_shapes_through_the_trainers_reader(tmp_path):
    bench_train.write_synthetic_mnist(tmp_path, seed=0)

    data = load_mnist(tmp_path)

    assert (data.train_images.shape, data.test_images.shape) == (
        (60_000, 28, 28, 1),
        (10_000, 28, 28, 1),
    )


def test_synthetic_mnist_labels_cover_every_digit(tmp_path):
    bench_train.write_synthetic_mnist(tmp_path, seed=0)

    data = load_mnist(tmp_path)

    assert set(np.unique(data.train_labels)) == set(range(10))


def test_activation_benchmark_covers_every_library_function_once():
    aliases_removed = {}
    for name in A.names():
        aliases_removed.setdefault(id(A.get(name)), name)
    expected = set(aliases_removed.values()) | set(NORMALISERS)

    assert set(bench_activations.activation_names()) == expected


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in bench_activations.activation_names()
        if bench_activations.counterpart(name).jax_fn is not None
    ],
)
def test_jax_counterpart_computes_the_same_function_as_ours(name):
    x = jnp.linspace(-6.0, 6.0, 60).reshape(3, 20)
    ours = bench_activations.activation(name)(x)
    theirs = bench_activations.counterpart(name).jax_fn(x)

    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_element_count_label_keeps_sixteen_million_exact():
    assert bench_activations.count(16_000_000) == "1.6e7"


def test_activation_benchmark_rejects_a_size_that_is_not_whole_rows(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_activations.parse_args(["--sizes", "1500"])

    assert exit_info.value.code == 2
    assert "'1500'" in capsys.readouterr().err


def test_activation_benchmark_rejects_an_unknown_function(capsys):
    with pytest.raises(SystemExit):
        bench_activations.parse_args(["--functions", "relu,nope"])

    assert "--functions nope" in capsys.readouterr().err


def test_training_benchmark_without_data_or_quick_asks_for_mnist(monkeypatch, capsys):
    monkeypatch.delenv("MNIST_DIR", raising=False)

    with pytest.raises(SystemExit):
        bench_train.parse_args([])

    assert "MNIST_DIR" in capsys.readouterr().err


# --- whole scripts in --quick mode -----------------------------------------------


@pytest.fixture(scope="module")
def torch_importable() -> bool:
    """Whether a fresh interpreter (like the scripts') can import PyTorch; asked
    in a subprocess so that this test process never loads it."""
    probe = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, timeout=300
    )
    return probe.returncode == 0


def run_script(script: str, out: Path, *args: str, block_torch: Path | None = None):
    """Runs a benchmark script and returns (completed process, its JSON)."""
    env = dict(os.environ)
    if block_torch is not None:
        # A package named torch that fails to import, found before the real one.
        package = block_torch / "torch"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            "raise ImportError('blocked for a test')\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(block_torch), env.get("PYTHONPATH")])
        )
    process = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--quick", "--out", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    name = Path(script).stem
    return process, json.loads((out / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def activations_run(tmp_path_factory):
    return run_script("bench_activations.py", tmp_path_factory.mktemp("acts"))


@pytest.fixture(scope="module")
def activations_without_torch(tmp_path_factory):
    return run_script(
        "bench_activations.py",
        tmp_path_factory.mktemp("acts_no_torch"),
        "--no-torch",
        "--allocator",
        "system",
        "--functions",
        "relu,softmax",
        "--sizes",
        "1000",
        "--dtypes",
        "float32",
    )


@pytest.fixture(scope="module")
def activations_torch_unimportable(tmp_path_factory):
    return run_script(
        "bench_activations.py",
        tmp_path_factory.mktemp("acts_blocked"),
        "--functions",
        "relu,softmax",
        "--sizes",
        "1000",
        "--dtypes",
        "bfloat16",
        block_torch=tmp_path_factory.mktemp("blocked_torch"),
    )


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    return run_script("bench_train.py", tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def train_torch_unimportable(tmp_path_factory):
    return run_script(
        "bench_train.py",
        tmp_path_factory.mktemp("train_blocked"),
        "--skip-time-to-accuracy",
        "--train-images",
        "1280",
        "--repeats",
        "1",
        block_torch=tmp_path_factory.mktemp("blocked_torch_train"),
    )


@pytest.mark.slow
def test_activation_benchmark_times_every_function_size_dtype_and_mode(
    activations_run,
):
    _, report = activations_run
    settings = report["settings"]
    expected = {
        (name, size, dtype, mode)
        for name in settings["functions"]
        for size in settings["sizes"]
        for dtype in settings["dtypes"]
        for mode in ("forward", "forward+backward")
    }

    measured = {
        (r["function"], r["size"], r["dtype"], r["mode"]) for r in report["results"]
    }
    assert measured == expected


@pytest.mark.slow
def test_activation_benchmark_ratio_to_jax_nn_is_positive_and_finite_for_each_pair(
    activations_run,
):
    _, report = activations_run
    paired = [r for r in report["results"] if hasattr(jax.nn, r["function"])]

    assert paired
    assert all(positive_finite(r["ratio_vs_jax"]) for r in paired)


@pytest.mark.slow
def test_activation_benchmark_fraction_of_copy_is_positive_and_finite_everywhere(
    activations_run,
):
    _, report = activations_run

    assert all(positive_finite(r["fraction_of_copy"]) for r in report["results"])


@pytest.mark.slow
def test_activation_benchmark_summary_medians_are_positive_and_finite(
    activations_run,
):
    _, report = activations_run
    medians = report["summary"]["median_ratio_vs_jax_nn"]

    assert medians and all(positive_finite(value) for value in medians.values())


@pytest.mark.slow
def test_activation_benchmark_torch_column_matches_whether_torch_imports(
    activations_run, torch_importable
):
    _, report = activations_run
    relu_rows = [r for r in report["results"] if r["function"] == "relu"]

    if torch_importable:
        assert all(positive_finite(r["ratio_vs_torch"]) for r in relu_rows)
    else:
        assert all(r["ratio_vs_torch"] is None for r in relu_rows)


@pytest.mark.slow
def test_activation_benchmark_prints_a_table_per_dtype_and_mode_and_targets(
    activations_run,
):
    process, report = activations_run
    headings = [
        f"### {dtype}, {mode}"
        for dtype in report["settings"]["dtypes"]
        for mode in ("forward", "forward+backward")
    ]

    assert all(heading in process.stdout for heading in [*headings, "### Targets"])


@pytest.mark.slow
def test_activation_benchmark_says_which_device_it_ran_on(activations_run):
    process, report = activations_run

    assert report["environment"]["device_kind"] == jax.devices()[0].device_kind
    assert f"1 x {jax.devices()[0].device_kind}" in process.stdout


@pytest.mark.slow
def test_activation_benchmark_with_no_torch_flag_records_torch_as_left_out(
    activations_without_torch,
):
    _, report = activations_without_torch

    assert report["environment"]["torch_note"] == "left out (--no-torch)"
    assert all(r["ratio_vs_torch"] is None for r in report["results"])


@pytest.mark.slow
def test_activation_benchmark_recycles_large_buffers_under_glibc(activations_run):
    _, report = activations_run
    glibc = platform.libc_ver()[0] == "glibc"

    assert report["environment"]["allocator"].startswith("glibc" if glibc else "system")


@pytest.mark.slow
def test_activation_benchmark_leaves_malloc_alone_when_asked(
    activations_without_torch,
):
    _, report = activations_without_torch

    assert report["environment"]["allocator"] == "system default"


@pytest.mark.slow
def test_activation_benchmark_runs_when_torch_cannot_be_imported(
    activations_torch_unimportable,
):
    _, report = activations_torch_unimportable

    assert report["environment"]["torch"] is None
    assert "unavailable" in report["environment"]["torch_note"]
    assert all(positive_finite(r["ratio_vs_jax"]) for r in report["results"])


@pytest.mark.slow
def test_training_benchmark_names_its_data_source(train_run):
    process, report = train_run
    synthetic = not os.environ.get("MNIST_DIR")

    assert report["data"].startswith("SYNTHETIC" if synthetic else "MNIST")
    assert report["data"] in process.stdout


@pytest.mark.slow
def test_training_benchmark_ratios_are_positive_and_finite(train_run, torch_importable):
    _, report = train_run
    ratios = report["ratios"]
    expected_keys = {
        "jax_scan_vs_nnx_step_loop",
        "jax_scan_vs_floor",
        "jax_scan_vs_needed_floor",
    }
    if torch_importable:
        expected_keys.add("jax_scan_vs_torch")

    assert {key for key, value in ratios.items() if positive_finite(value)} == (
        expected_keys
    )


@pytest.mark.slow
def test_training_benchmark_floor_uses_the_closed_form_flop_count(train_run):
    _, report = train_run
    images = report["images_per_epoch"]
    expected_flops = 3 * 2 * images * (784 * 512 + 512 * 512 + 512 * 10)

    assert report["floor"]["flops"] == expected_flops
    assert math.isclose(
        report["floor"]["seconds"], expected_flops / report["matmul"]["peak_flops"]
    )


@pytest.mark.slow
def test_training_benchmark_epochs_are_whole_batches_of_128(train_run):
    _, report = train_run
    images = report["settings"]["train_images"]

    assert report["steps_per_epoch"] == images // 128
    assert report["images_per_epoch"] == (images // 128) * 128


@pytest.mark.slow
def test_training_benchmark_time_to_accuracy_agrees_with_the_epochs_it_saw(train_run):
    _, report = train_run
    tta = report["time_to_accuracy"]
    reached = any(a >= 0.98 for a in tta["test_accuracy_per_epoch"])

    assert not tta["failed"]
    assert positive_finite(tta["seconds_to_target"]) == reached


@pytest.mark.slow
def test_training_benchmark_runs_when_torch_cannot_be_imported(
    train_torch_unimportable,
):
    _, report = train_torch_unimportable
    verdicts = {t["target"]: t["verdict"] for t in report["targets"]}

    assert "torch" not in report["epoch_seconds"]
    assert verdicts["epoch time ours / PyTorch"] == "not measured"
    assert positive_finite(report["ratios"]["jax_scan_vs_nnx_step_loop"])
