"""Times the trainer's compiled whole-epoch function on MNIST against the same
model trained one dispatch per step and against an equivalent PyTorch MLP, beside
the matmul-throughput floor measured in the same run, and times a launch of the
trainer's quick preset until it reaches 98% test accuracy.

Run ``python scripts/bench_train.py --data-dir DIR`` (or set ``MNIST_DIR``);
``--quick`` is a one-minute check. It prints markdown tables and writes
``bench_train.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _bench_common import (
    alternate,
    block,
    build_parser,
    calls_per_sample,
    describe_environment,
    environment,
    fmt_ratio,
    fmt_seconds,
    load_torch,
    markdown_table,
    median,
    positive_int,
    prepare_out,
    ratio,
    targets_table,
    verdict,
    warm_up,
    write_report,
)

from train import steps
from train.config import PRESETS, Config
from train.data import IDX_FILES, MNIST, load_mnist
from train.model import NUM_PIXELS, PIXEL_MEAN, PIXEL_STD

logger = logging.getLogger("bench_train")

NAME = "bench_train"
HIDDEN = (512, 512)
BATCH_SIZE = 128
NUM_CLASSES = 10
TARGET_ACCURACY = 0.98
TARGET_VS_TORCH = 0.6
TARGET_VS_FLOOR = 1.3
# Square float32 matmuls whose best rate stands for the machine's matmul peak.
MATMUL_SIZES = {"cpu": (512, 1024, 2048), "gpu": (4096, 8192)}
QUICK_MATMUL_SIZES = {"cpu": (256, 512), "gpu": (1024, 2048)}
MATMUL_SAMPLE_SECONDS = 0.25
# A slice of the training split keeps --quick epochs short.
QUICK_TRAIN_IMAGES = 12_800
TIME_TO_ACCURACY_LIMIT_S = 600


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses and checks the command line; full runs need real MNIST."""
    parser = build_parser(
        NAME,
        "Time the trainer's scanned epoch against a per-step loop and PyTorch, "
        "beside the matmul floor, and its quick preset's time to 98% accuracy.",
        repeats=(3, 2),
        repeated="epochs (after one untimed warm-up epoch each)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("MNIST_DIR"),
        help="folder of the four MNIST IDX files (default: $MNIST_DIR); with "
        "--quick and neither given, synthetic images of MNIST's shape are used",
    )
    parser.add_argument(
        "--train-images",
        type=positive_int,
        default=None,
        help="train on the first N training images (default: all, or "
        f"{QUICK_TRAIN_IMAGES} with --quick)",
    )
    parser.add_argument(
        "--skip-time-to-accuracy",
        action="store_true",
        help="leave out the launch of the trainer's quick preset",
    )
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (default: 0)")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 3)
    if args.train_images is None and args.quick:
        args.train_images = QUICK_TRAIN_IMAGES
    if args.train_images is not None and args.train_images < BATCH_SIZE:
        parser.error(
            f"--train-images {args.train_images}: fewer than one batch; expected at "
            f"least {BATCH_SIZE}"
        )
    if args.data_dir is None and not args.quick:
        parser.error(
            "no MNIST: pass --data-dir DIR or set MNIST_DIR to a folder holding the "
            "four MNIST IDX files (synthetic data is only for --quick)"
        )
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(
            f"--data-dir {args.data_dir}: not a directory; expected a folder holding "
            "the four MNIST IDX files"
        )
    return args


def write_synthetic_mnist(folder: Path, seed: int) -> None:
    """Writes raw IDX files of MNIST's shape (60,000 and 10,000 images of 28x28)
    whose classes are easy to tell apart: each class is a fixed random stroke
    pattern, dimmed at random and overlaid with noise."""
    rng = np.random.default_rng(seed)
    templates = ((rng.random((NUM_CLASSES, 28, 28)) < 0.15) * 175).astype(np.uint16)
    for split, count in (("train", 60_000), ("test", 10_000)):
        labels = rng.integers(0, NUM_CLASSES, count, dtype=np.uint8)
        # Integer arithmetic keeps the 47M-pixel split small in memory.
        brightness = rng.integers(128, 257, (count, 1, 1), dtype=np.uint16)
        noise = rng.integers(0, 80, (count, 28, 28), dtype=np.uint16)
        images = ((templates[labels] * brightness) >> 8) + noise
        images_name, labels_name = IDX_FILES[split]
        header = np.array([0x0803, count, 28, 28], dtype=">i4").tobytes()
        (folder / images_name).write_bytes(header + images.astype(np.uint8).tobytes())
        header = np.array([0x0801, count], dtype=">i4").tobytes()
        (folder / labels_name).write_bytes(header + labels.tobytes())


def bench_config(epochs: int, seed: int) -> Config:
    """784-512-512-10, ReLU, AdamW, batch 128, no dropout: the benchmark model,
    on top of the default preset's optimiser settings."""
    return dataclasses.replace(
        PRESETS["default"],
        hidden=HIDDEN,
        batch_size=BATCH_SIZE,
        dropout=0.0,
        input_dropout=0.0,
        activation="relu",
        optimizer="adamw",
        epochs=epochs,
        warmup_epochs=min(PRESETS["default"].warmup_epochs, epochs),
        seed=seed,
    )


def jax_contenders(config: Config, data: MNIST) -> dict[str, Callable[[], Any]]:
    """The trainer's scanned epoch and its one-dispatch-per-step path, built by
    the trainer's own ``train.steps.build``, each with its own parameters and
    optimiser state, as calls that run one epoch and wait for it."""
    fns = steps.build(
        config, num_train=len(data.train_labels), num_test=len(data.test_labels)
    )
    device_data = steps.put_data(data, fns.mesh)
    images, labels = device_data.train_images, device_data.train_labels

    def fresh_state() -> dict[str, Any]:
        params, opt_state = fns.init()
        return {"params": params, "opt_state": opt_state, "epoch": 0}

    scanned = fresh_state()

    def scanned_epoch() -> None:
        scanned["epoch"] += 1
        params, opt_state, metrics = fns.train_epoch(
            scanned["params"],
            scanned["opt_state"],
            images,
            labels,
            jnp.int32(scanned["epoch"]),
        )
        scanned.update(params=params, opt_state=opt_state)
        block(metrics)

    looped = fresh_state()

    def step_loop_epoch() -> None:
        looped["epoch"] += 1
        epoch = jnp.int32(looped["epoch"])
        batches = fns.shuffle(epoch)
        params, opt_state = looped["params"], looped["opt_state"]
        for step_number in range(fns.num_steps):
            params, opt_state, metrics = fns.train_step(
                params, opt_state, images, labels, batches, epoch, step_number
            )
        looped.update(params=params, opt_state=opt_state)
        block(metrics)

    return {"jax_scan": scanned_epoch, "nnx_step_loop": step_loop_epoch}


def torch_contender(
    torch: Any, config: Config, data: MNIST, device: str
) -> Callable[[], None]:
    """The same MLP, loss, optimiser and batches in PyTorch: uint8 images held
    in memory, a fresh permutation per epoch, images normalised per batch as the
    trainer does, ``N // batch`` steps. The learning rate stays at its peak: a
    schedule would only add work on this side."""
    nn = torch.nn
    torch.manual_seed(config.seed)
    sizes = (NUM_PIXELS, *config.hidden)
    layers: list[Any] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], NUM_CLASSES)).to(device)
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim == 1]
    optimizer = torch.optim.AdamW(
        [
            {"params": weights, "weight_decay": config.weight_decay},
            {"params": biases, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    num_train = len(data.train_labels)
    images = torch.from_numpy(data.train_images.reshape(num_train, NUM_PIXELS).copy())
    images = images.to(device)
    labels = torch.from_numpy(data.train_labels.astype(np.int64)).to(device)
    num_steps = num_train // config.batch_size
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def epoch() -> None:
        order = torch.randperm(num_train, generator=generator).to(device)
        for i in range(num_steps):
            index = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = (images[index].float() * (1.0 / 255.0) - PIXEL_MEAN) * (1.0 / PIXEL_STD)
            loss = nn.functional.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync()

    return epoch


def square_matmul(n: int) -> Callable[[], Any]:
    """A call that multiplies two random float32 ``n x n`` matrices and waits."""
    multiply = jax.jit(jnp.matmul)
    keys = jax.random.split(jax.random.key(n), 2)
    a, b = (jax.random.normal(key, (n, n), jnp.float32) for key in keys)
    return lambda: block(multiply(a, b))


def matmul_rates(sizes: Sequence[int], repeats: int) -> dict[str, float]:
    """FLOP/s of square float32 matmuls (2 n^3 FLOPs each), median of repeats."""
    rates = {}
    for n in sizes:
        call = square_matmul(n)
        warm_up(call)
        number = calls_per_sample({"matmul": call}, MATMUL_SAMPLE_SECONDS)
        samples = alternate({"matmul": call}, repeats=repeats, number=number)
        rates[str(n)] = 2 * n**3 / median(samples["matmul"])
    return rates


def layer_matmul_rate(config: Config, repeats: int) -> float:
    """FLOP/s of the model's own forward matmuls at its batch size, one
    compiled call per layer shape; small shapes run below the square peak."""
    sizes = (NUM_PIXELS, *config.hidden, NUM_CLASSES)
    multiply = jax.jit(jnp.matmul)
    total_seconds, total_flops = 0.0, 0
    for fan_in, fan_out in itertools.pairwise(sizes):
        a = jnp.ones((config.batch_size, fan_in), jnp.float32)
        b = jnp.ones((fan_in, fan_out), jnp.float32)
        call = lambda a=a, b=b: block(multiply(a, b))  # noqa: E731
        warm_up(call)
        number = calls_per_sample({"matmul": call}, MATMUL_SAMPLE_SECONDS)
        samples = alternate({"matmul": call}, repeats=repeats, number=number)
        total_seconds += median(samples["matmul"])
        total_flops += 2 * config.batch_size * fan_in * fan_out
    return total_flops / total_seconds


def epoch_flops(config: Config, images_per_epoch: int) -> dict[str, int]:
    """Matmul FLOPs of one epoch. ``three_x_forward``: forward 2*fan_in*fan_out
    per layer and image, backward twice that (weight and input gradients).
    ``needed``: the same without the first layer's input gradient, which no
    one uses; biases, activations, loss and optimiser are left out of both."""
    sizes = (NUM_PIXELS, *config.hidden, NUM_CLASSES)
    per_layer = [2 * a * b for a, b in itertools.pairwise(sizes)]
    forward = sum(per_layer)
    return {
        "three_x_forward": 3 * forward * images_per_epoch,
        "needed": (3 * forward - per_layer[0]) * images_per_epoch,
    }


def time_to_accuracy(data_dir: Path, target: float) -> dict[str, Any]:
    """Launches ``python -m train --preset quick`` in a fresh process and times
    it from launch until its metrics file first shows ``target`` test accuracy,
    so imports, data loading and compilation all count; the run is stopped there.
    The trainer writes its metrics once per epoch, so the time ends at the end
    of the first epoch (with its evaluation) that reaches the target."""
    with tempfile.TemporaryDirectory(prefix="bench_train_") as workdir:
        command = [
            sys.executable,
            "-m",
            "train",
            "--preset",
            "quick",
            "--data-dir",
            str(data_dir),
            "--workdir",
            str(Path(workdir) / "run"),
        ]
        metrics_path = Path(workdir) / "run" / "metrics.jsonl"
        log_path = Path(workdir) / "stderr.txt"
        reached_seconds, reached_epoch = None, None
        with log_path.open("w") as log:
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
            while process.poll() is None:
                hits = [
                    r
                    for r in _read_metrics(metrics_path)
                    if r["test_accuracy"] >= target
                ]
                if hits:
                    reached_seconds = time.perf_counter() - start
                    reached_epoch = hits[0]["epoch"]
                    process.terminate()
                    process.wait()
                elif time.perf_counter() - start > TIME_TO_ACCURACY_LIMIT_S:
                    process.kill()
                    process.wait()
                else:
                    time.sleep(0.02)
            process_seconds = time.perf_counter() - start
        records = _read_metrics(metrics_path)
        stderr = log_path.read_text()

    if reached_seconds is None:
        hits = [r for r in records if r["test_accuracy"] >= target]
        if hits:
            # Written in the last epoch, just before the process exited.
            reached_seconds, reached_epoch = process_seconds, hits[0]["epoch"]
    failed = reached_seconds is None and process.returncode != 0
    return {
        "command": "python -m train --preset quick --data-dir DIR",
        "target_accuracy": target,
        "seconds_to_target": reached_seconds,
        "epoch_reached": reached_epoch,
        "process_seconds": process_seconds,
        "returncode": process.returncode,
        "failed": failed,
        "test_accuracy_per_epoch": [r["test_accuracy"] for r in records],
        "stderr_tail": stderr[-2000:] if failed else "",
    }


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    """The complete lines of the trainer's ``metrics.jsonl`` so far."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the trainer is still writing this line
    return records


def render(
    env: dict[str, Any], result: dict[str, Any], args: argparse.Namespace
) -> str:
    """The markdown report: environment, epoch times, the matmul floor, the
    time to accuracy and the targets."""
    epochs = result["epoch_seconds"]
    floor = result["floor"]
    parts = [f"## Training benchmark\n\n{describe_environment(env)}"]
    parts.append(
        f"Data: {result['data']}. Model 784-{'-'.join(map(str, HIDDEN))}-10, ReLU, "
        f"AdamW, batch {BATCH_SIZE}, {result['steps_per_epoch']} steps per epoch "
        f"({result['images_per_epoch']:,} images). Epoch times are medians of "
        f"{args.repeats} epochs per contender, contenders alternated, after one "
        "untimed warm-up epoch each (compilation excluded; its time is shown apart)."
    )
    labels = {
        "jax_scan": "ours: trainer's scanned epoch (`lax.scan`)",
        "nnx_step_loop": "Flax NNX, one dispatch per step (trainer's jitted step)",
        "torch": f"PyTorch ({env.get('torch_device') or 'unavailable'})",
    }
    rows = []
    for key, label in labels.items():
        seconds = epochs.get(key)
        rows.append(
            [
                label,
                fmt_seconds(seconds),
                fmt_seconds(result["first_epoch_seconds"].get(key)),
                fmt_ratio(ratio(epochs["jax_scan"], seconds)),
                fmt_ratio(ratio(seconds, floor["seconds"])),
            ]
        )
    parts.append(
        "### Epoch time\n\n"
        + markdown_table(
            [
                "contender",
                "epoch (median)",
                "first epoch incl. compile",
                "ours / this",
                "this / matmul floor",
            ],
            rows,
        )
    )
    rates = result["matmul"]
    parts.append(
        "### Matmul floor\n\n"
        + markdown_table(
            ["quantity", "value"],
            [
                [
                    f"float32 matmul peak (fastest square size n={rates['peak_size']}, "
                    "timed in the epochs' rounds)",
                    f"{rates['peak_flops'] / 1e9:.1f} GFLOP/s",
                ],
                [
                    f"model's forward matmuls at batch {BATCH_SIZE}",
                    f"{rates['layer_flops'] / 1e9:.1f} GFLOP/s",
                ],
                [
                    "epoch FLOPs = 3 x 2 x images x sum(fan_in x fan_out)",
                    f"{floor['flops']:.3e}",
                ],
                ["floor = epoch FLOPs / peak", fmt_seconds(floor["seconds"])],
                [
                    "floor without the unused input gradient of layer 1",
                    fmt_seconds(floor["needed_seconds"]),
                ],
            ],
        )
    )
    tta = result["time_to_accuracy"]
    if tta is not None:
        reached = (
            f"{tta['seconds_to_target']:.1f} s (epoch {tta['epoch_reached']})"
            if tta["seconds_to_target"] is not None
            else f"not reached (accuracies {tta['test_accuracy_per_epoch']})"
        )
        parts.append(
            f"### Launch to {TARGET_ACCURACY:.0%} test accuracy\n\n"
            + markdown_table(
                ["command", "launch to target (compilation included)"],
                [[f"`{tta['command']}`", reached]],
            )
        )
    parts.append("### Targets\n\n" + targets_table(result["targets"]))
    return "\n\n".join(parts)


def resolve_data(args: argparse.Namespace, scratch: Path) -> tuple[Path, str]:
    """The MNIST folder to use and a note saying what it holds; without one
    (only allowed with --quick), synthetic data written into ``scratch``."""
    if args.data_dir is not None:
        return Path(args.data_dir), "MNIST from the --data-dir / MNIST_DIR folder"
    write_synthetic_mnist(scratch, args.seed)
    return scratch, (
        "SYNTHETIC images of MNIST's shape (no --data-dir and MNIST_DIR unset); "
        "the times are real, the accuracies are not MNIST's"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_out(args.out)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="synthetic_mnist_") as scratch:
        data_dir, data_note = resolve_data(args, Path(scratch))
        tta = None
        if not args.skip_time_to_accuracy:
            # Launched before this process touches JAX's backend, so that on a
            # GPU the trainer finds the memory free (JAX preallocates most of
            # it), and on a CPU it has the cores to itself.
            logger.info("launching the trainer's quick preset")
            tta = time_to_accuracy(data_dir, TARGET_ACCURACY)
        data = load_mnist(data_dir)
    if args.train_images is not None:
        data = data._replace(
            train_images=data.train_images[: args.train_images],
            train_labels=data.train_labels[: args.train_images],
        )
        data_note += f", first {len(data.train_labels):,} training images"
    logger.info("data: %s", data_note)

    torch, torch_note = load_torch(not args.no_torch, args.torch_threads)
    env = environment(torch, torch_note)
    torch_device = (
        "cuda" if env["gpu"] and torch and torch.cuda.is_available() else "cpu"
    )
    env["torch_device"] = torch_device if torch is not None else None
    logger.info(describe_environment(env))

    backend = "gpu" if env["gpu"] else "cpu"
    sizes = (QUICK_MATMUL_SIZES if args.quick else MATMUL_SIZES)[backend]
    logger.info("surveying square matmuls %s for the fastest size", sizes)
    square = matmul_rates(sizes, repeats=3)
    peak_size = int(max(square, key=square.get))
    config = bench_config(args.repeats + 1, args.seed)
    layer_rate = layer_matmul_rate(config, repeats=3)

    contenders = jax_contenders(config, data)
    if torch is not None:
        contenders["torch"] = torch_contender(torch, config, data, torch_device)
    logger.info("warm-up epoch of each contender (compiles)")
    first_epoch = {name: warm_up(fn) for name, fn in contenders.items()}
    # The matmul peak is sampled in the same rounds as the epochs, so that the
    # floor and the epoch times see the same machine.
    contenders["matmul"] = square_matmul(peak_size)
    warm_up(contenders["matmul"])
    number = {name: 1 for name in contenders}
    number.update(
        calls_per_sample({"matmul": contenders["matmul"]}, MATMUL_SAMPLE_SECONDS)
    )
    logger.info("timing %d epochs per contender, alternated", args.repeats)
    samples = alternate(contenders, repeats=args.repeats, number=number)
    matmul_samples = samples.pop("matmul")
    peak_rate = 2 * peak_size**3 / median(matmul_samples)
    epoch_seconds = {name: median(values) for name, values in samples.items()}

    num_steps = steps.steps_per_epoch(config, len(data.train_labels))
    images_per_epoch = num_steps * config.batch_size
    flops = epoch_flops(config, images_per_epoch)
    floor_seconds = flops["three_x_forward"] / peak_rate
    vs_torch = ratio(epoch_seconds["jax_scan"], epoch_seconds.get("torch"))
    vs_floor = ratio(epoch_seconds["jax_scan"], floor_seconds)
    result = {
        "data": data_note,
        "steps_per_epoch": num_steps,
        "images_per_epoch": images_per_epoch,
        "epoch_seconds": epoch_seconds,
        "epoch_samples": samples,
        "first_epoch_seconds": first_epoch,
        "ratios": {
            "jax_scan_vs_torch": vs_torch,
            "jax_scan_vs_nnx_step_loop": ratio(
                epoch_seconds["jax_scan"], epoch_seconds["nnx_step_loop"]
            ),
            "jax_scan_vs_floor": vs_floor,
            "jax_scan_vs_needed_floor": ratio(
                epoch_seconds["jax_scan"], flops["needed"] / peak_rate
            ),
        },
        "matmul": {
            "square_flops": square,
            "peak_size": peak_size,
            "peak_flops": peak_rate,
            "peak_samples_seconds": matmul_samples,
            "layer_flops": layer_rate,
        },
        "floor": {
            "formula": "3 * 2 * images_per_epoch * sum(fan_in * fan_out) / peak",
            "flops": flops["three_x_forward"],
            "needed_flops": flops["needed"],
            "seconds": floor_seconds,
            "needed_seconds": flops["needed"] / peak_rate,
        },
        "time_to_accuracy": tta,
    }
    result["targets"] = [
        {
            "target": "epoch time ours / PyTorch",
            "limit": f"<= {TARGET_VS_TORCH}",
            "measured": vs_torch,
            "verdict": verdict(vs_torch, TARGET_VS_TORCH),
        },
        {
            "target": "epoch time ours / matmul floor",
            "limit": f"<= {TARGET_VS_FLOOR}",
            "measured": vs_floor,
            "verdict": verdict(vs_floor, TARGET_VS_FLOOR),
        },
    ]
    text = render(env, result, args)
    print(text)
    payload = {
        "benchmark": NAME,
        "quick": args.quick,
        "settings": {
            "epochs": args.repeats,
            "train_images": args.train_images,
            "hidden": list(HIDDEN),
            "batch_size": BATCH_SIZE,
            "config": config.to_json(),
        },
        "environment": env,
        **result,
    }
    path = write_report(args.out, NAME, payload, text)
    logger.info("wrote %s", path)
    failed = tta is not None and tta["failed"]
    if failed:
        logger.error(
            "the trainer exited with %d:\n%s", tta["returncode"], tta["stderr_tail"]
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
