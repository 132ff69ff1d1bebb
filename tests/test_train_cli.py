"""Tests of ``python -m train``: flags, usage errors, exit codes and a full run."""

import json
from pathlib import Path

import pytest
from support import synthetic_mnist, write_idx

from train.cli import build_parser, main, resolve
from train.config import PRESETS

# A small learnable run; the same settings as the in-process run tests.
SMALL_RUN = [
    "--epochs", "3", "--batch-size", "64", "--hidden", "32,16", "--dropout", "0.1",
    "--learning-rate", "3e-3", "--warmup-epochs", "0.5", "--input-dropout", "0",
    "--weight-decay", "1e-4", "--label-smoothing", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_idx(folder, synthetic_mnist(640, 200))
    return folder


def usage_error(capsys, argv) -> str:
    """Runs the CLI expecting exit status 2; returns what it wrote to stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_help_shows_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in [
        ("--epochs", PRESETS["default"].epochs),
        ("--batch-size", PRESETS["default"].batch_size),
        ("--hidden", ",".join(map(str, PRESETS["default"].hidden))),
        ("--activation", PRESETS["default"].activation),
        ("--optimizer", PRESETS["default"].optimizer),
        ("--learning-rate", PRESETS["default"].learning_rate),
        ("--weight-decay", PRESETS["default"].weight_decay),
        ("--dropout", PRESETS["default"].dropout),
        ("--seed", PRESETS["default"].seed),
        ("--workdir", PRESETS["default"].workdir),
    ]:
        assert flag in text
        assert f"default: {default}" in text.split(flag, 2)[-1]
    for flag in ("--data-dir", "--preset", "--resume", "--overwrite"):
        assert flag in text


def test_flags_override_the_preset():
    args = build_parser().parse_args(["--preset", "quick", "--epochs", "7"])
    config = resolve(args)
    assert config.epochs == 7
    assert config.hidden == PRESETS["quick"].hidden
    assert config.batch_size == PRESETS["quick"].batch_size


def test_hidden_flag_parses_comma_separated_sizes():
    args = build_parser().parse_args(["--hidden", "300,100,50"])
    assert resolve(args).hidden == (300, 100, 50)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--activation", "relu7"], "unknown activation 'relu7'"),
        (["--epochs", "-3"], "expected a positive integer, got -3"),
        (["--epochs", "0"], "expected a positive integer, got 0"),
        (["--hidden", "512,0"], "layer sizes of at least 1"),
        (["--hidden", "512,,512"], "comma-separated layer sizes"),
        (["--learning-rate", "0"], "expected a positive number, got 0"),
        (["--learning-rate", "-0.1"], "expected a positive number, got -0.1"),
        (["--learning-rate", "fast"], "expected a positive number, got 'fast'"),
        (["--learning-rate", "nan"], "expected a positive number, got nan"),
        (["--dropout", "1.0"], "dropout must be a number in"),
        (["--optimizer", "adam"], "invalid choice: 'adam'"),
        (["--resume", "--overwrite"], "not allowed with argument"),
        (["--epochs", "2", "--warmup-epochs", "3"], "--warmup-epochs of at most 2"),
        (["--coordinator-address", "h:1"], "add --distributed"),
        (["--num-processes", "2", "--process-id", "1"], "only apply to a multi-host"),
    ],
)
def test_invalid_flag_is_a_usage_error_that_writes_nothing(
    capsys, tmp_path, argv, message
):
    workdir = tmp_path / "run"
    err = usage_error(capsys, [*argv, "--workdir", str(workdir)])
    assert message in err
    assert not workdir.exists()


def test_batch_larger_than_the_dataset_is_a_usage_error(capsys, tmp_path, data_dir):
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(data_dir), "--batch-size", "1000"]
    err = usage_error(capsys, [*argv, "--workdir", str(workdir)])
    assert "batch_size 1000 is larger than the 640 training examples" in err
    assert not workdir.exists()


def test_missing_data_exits_1_and_writes_nothing(capsys, tmp_path):
    workdir = tmp_path / "run"
    status = main(["--data-dir", str(tmp_path / "none"), "--workdir", str(workdir)])
    assert status == 1
    assert f"MNIST folder {tmp_path / 'none'} does not exist" in capsys.readouterr().err
    assert not workdir.exists()


def test_run_exits_0_and_prints_the_test_accuracy(capsys, tmp_path, data_dir):
    workdir = tmp_path / "run"
    status = main(["--data-dir", str(data_dir), "--workdir", str(workdir), *SMALL_RUN])
    out = capsys.readouterr().out
    summary = json.loads((workdir / "summary.json").read_text())
    assert status == 0
    assert f"test accuracy {100 * summary['test_accuracy']:.2f}%" in out


def test_run_logs_header_epochs_and_where_outputs_went(capsys, tmp_path, data_dir):
    workdir = tmp_path / "run"
    main(["--data-dir", str(data_dir), "--workdir", str(workdir), *SMALL_RUN])
    err = capsys.readouterr().err
    assert "640 train and 200 test images" in err
    assert "25,818 parameters" in err
    assert sum(line.startswith("epoch ") for line in err.splitlines()) == 3
    assert f"to {workdir}" in err.splitlines()[-1]


def test_rerun_with_another_config_is_refused_before_writing(
    capsys, tmp_path, data_dir
):
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(data_dir), "--workdir", str(workdir), *SMALL_RUN]
    main(argv)
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    capsys.readouterr()
    err = usage_error(capsys, [*argv, "--seed", "5", "--resume"])
    assert "holds a run with a different config (seed: 0 there, 5 now)" in err
    assert {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()} == before


def test_non_finite_loss_exits_3_naming_epoch_and_step(capsys, tmp_path, data_dir):
    argv = [
        "--data-dir", str(data_dir), "--workdir", str(tmp_path / "run"),
        "--epochs", "50", "--batch-size", "40", "--hidden", "32,16",
        "--dropout", "0", "--learning-rate", "1e-3", "--weight-decay", "3500",
        "--warmup-epochs", "0", "--input-dropout", "0", "--label-smoothing", "0",
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "NaN or inf at epoch 2, step" in err
    assert "the checkpoint of epoch 1 is kept" in err


@pytest.mark.parametrize("workdir", ["", "   "])
def test_empty_workdir_is_a_usage_error(capsys, workdir):
    # An empty path is the current directory, which --overwrite would clear.
    err = usage_error(capsys, ["--workdir", workdir, "--overwrite"])
    assert "workdir must name a directory" in err


def test_workdir_inside_a_file_is_a_usage_error(capsys, tmp_path, data_dir):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    argv = ["--data-dir", str(data_dir), "--workdir", str(blocker / "run")]
    err = usage_error(capsys, argv)
    assert f"inside {blocker}, which is a file" in err
    assert blocker.read_text() == "not a folder"


def test_one_epoch_with_the_default_warm_up_trains(capsys, tmp_path, data_dir):
    # The default preset warms up for one epoch: --epochs 1 must still run.
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(data_dir), "--workdir", str(workdir), "--epochs", "1",
            "--hidden", "16", "--batch-size", "64", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["epochs"] == 1


def test_workdir_in_the_data_directory_is_a_usage_error(capsys, data_dir):
    before = sorted(path.name for path in data_dir.iterdir())
    for workdir in (data_dir, data_dir / "run"):
        argv = ["--data-dir", str(data_dir), "--workdir", str(workdir)]
        err = usage_error(capsys, [*argv, "--epochs", "1", "--overwrite"])
        assert f"lies in the data directory {data_dir}" in err
    assert sorted(path.name for path in data_dir.iterdir()) == before


def test_workdir_that_cannot_be_created_is_a_usage_error(
    capsys, tmp_path, data_dir, monkeypatch
):
    workdir = tmp_path / "locked" / "run"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == workdir:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    argv = ["--data-dir", str(data_dir), "--workdir", str(workdir), *SMALL_RUN]
    err = usage_error(capsys, argv)
    assert f"workdir {workdir} cannot be written (Permission denied)" in err
    assert "Traceback" not in err


def test_resume_with_only_the_workdir_continues_the_run_as_configured(
    capsys, monkeypatch, tmp_path, data_dir
):
    workdir = tmp_path / "run"
    argv = ["--data-dir", str(data_dir), "--workdir", str(workdir)]
    assert main([*argv, *SMALL_RUN, "--epochs", "2"]) == 0
    stored = (workdir / "config.json").read_text()
    assert main([*argv, "--resume", "--no-progress"]) == 0
    assert "Resuming after epoch 2" in capsys.readouterr().err
    assert (workdir / "config.json").read_text() == stored
    summary = json.loads((workdir / "summary.json").read_text())
    assert (summary["epochs"], summary["resumed_after_epoch"]) == (2, 2)
    # Without --data-dir or MNIST_DIR, the resumed run reads the data it began on.
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert main(["--workdir", str(workdir), "--resume", "--no-progress"]) == 0
    assert "Resuming after epoch 2" in capsys.readouterr().err
    # A flag given with --resume must still match the run.
    err = usage_error(capsys, [*argv, "--resume", "--hidden", "64"])
    assert "hidden: [32, 16] there, [64] now" in err
