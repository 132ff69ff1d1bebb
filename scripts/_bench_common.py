"""Timing, environment and reporting helpers shared by the benchmark scripts:
contenders timed in alternation, medians, ratios, markdown tables and JSON."""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
from _out import prepare_out as prepare_out


def build_parser(
    name: str, description: str, *, repeats: tuple[int, int], repeated: str
) -> argparse.ArgumentParser:
    """Returns the parser both benchmarks share: ``--out``, ``--quick``,
    ``--repeats`` (``repeats`` gives its full and quick defaults, ``repeated``
    what is repeated), ``--no-torch`` and ``--torch-threads``; a script adds its
    own flags to it."""
    parser = argparse.ArgumentParser(
        prog=f"scripts/{name}.py",
        description=description,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out") / name,
        help=f"directory for {name}.json and {name}.md, created if missing "
        f"(default: out/{name})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and few repeats, about a minute on 2 CPU cores",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help=f"timed {repeated} per contender, alternated (default: {repeats[0]}, "
        f"or {repeats[1]} with --quick)",
    )
    parser.add_argument(
        "--no-torch",
        action="store_true",
        help="leave PyTorch out even when it is installed",
    )
    parser.add_argument(
        "--torch-threads",
        type=positive_int,
        default=None,
        help="PyTorch intra-op threads (default: PyTorch's own choice)",
    )
    return parser


def positive_int(text: str) -> int:
    """Parses a command-line integer that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive integer; pass a whole number such as 5"
        )
    return value


def load_torch(wanted: bool, threads: int | None = None) -> tuple[Any | None, str]:
    """Returns ``(torch, description)``, or ``(None, reason)`` when PyTorch is
    not wanted or cannot be imported, so that every benchmark runs without it."""
    if not wanted:
        return None, "left out (--no-torch)"
    try:
        torch = importlib.import_module("torch")
    except ImportError as err:
        return None, f"unavailable ({err}); install it with pip install '.[bench]'"
    if threads is not None:
        torch.set_num_threads(threads)
    return torch, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def environment(torch: Any | None, torch_note: str) -> dict[str, Any]:
    """Describes what the numbers were measured on: JAX's backend and devices
    (whether it sees a GPU), the host and the PyTorch contender."""
    devices = jax.devices()
    return {
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "gpu": any(device.platform == "gpu" for device in devices),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__ if torch is not None else None,
        "torch_note": torch_note,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def describe_environment(env: Mapping[str, Any]) -> str:
    """One markdown paragraph naming the device the tables come from."""
    accelerator = "a GPU" if env["gpu"] else "no GPU"
    return (
        f"JAX {env['jax_version']} sees {accelerator}: backend `{env['backend']}`, "
        f"{env['device_count']} x {env['device_kind']}. Host: {env['cpu_count']} "
        f"CPUs ({env['processor']}), Python {env['python']}. "
        f"PyTorch: {env['torch_note']}."
        + (f" Host allocator: {env['allocator']}." if "allocator" in env else "")
    )


def reuse_large_buffers() -> str:
    """Asks glibc's malloc to recycle large freed blocks instead of returning
    them to the system, and says what was done.

    By default glibc maps every block above 32 MB afresh, so each call that
    writes a new 64 MB output (16M float32) first takes a page fault per 4 KB
    page; that costs several times the kernel itself and would hide every
    difference between kernels behind the allocator. A training loop reuses
    its buffers, as a GPU's allocator does.

    Every thread is also kept on the main arena: the other arenas grow in
    64 MB heaps, so a 64 MB block that a runtime thread allocates is mapped
    afresh each time whatever the thresholds say, and which thread allocates
    changes during a long run. This only holds for threads started after the
    call, so call it before JAX or PyTorch starts its thread pools.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "system default (no glibc mallopt here)"
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    if (
        mallopt(m_arena_max, 1)
        and mallopt(m_mmap_threshold, 1 << 30)
        and mallopt(m_trim_threshold, 2**31 - 1)
    ):
        return "glibc keeps freed blocks up to 1 GiB for reuse, one arena (mallopt)"
    return "system default (mallopt refused)"


def block(value: Any) -> Any:
    """Waits until every JAX array in ``value`` is computed; other values pass."""
    return jax.block_until_ready(value)


def warm_up(fn: Callable[[], Any]) -> float:
    """Runs ``fn`` once (compilation, first-touch allocation) and returns the
    seconds it took; steady-state timing starts only after this."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def calls_per_sample(
    contenders: Mapping[str, Callable[[], Any]], min_sample_seconds: float
) -> dict[str, int]:
    """For each contender, the number of back-to-back calls that makes one
    sample last about ``min_sample_seconds``, so that timer resolution, loop
    overhead and a stray descheduling average out for tiny inputs, while slow
    contenders are not run for long."""
    number = {}
    for name, fn in contenders.items():
        fastest = max(_fastest_call(fn, min_sample_seconds), 1e-9)
        number[name] = min(10_000, max(1, math.ceil(min_sample_seconds / fastest)))
    return number


def _fastest_call(fn: Callable[[], Any], budget_seconds: float) -> float:
    # The fastest of a few single calls: one call hit by a context switch would
    # otherwise set a tiny input's calls per sample far too low.
    fastest, spent = math.inf, 0.0
    for _ in range(5):
        seconds = _seconds_per_call(fn, 1)
        fastest, spent = min(fastest, seconds), spent + seconds
        if spent >= budget_seconds:
            break
    return fastest


def _seconds_per_call(fn: Callable[[], Any], number: int) -> float:
    """Mean seconds per call over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def alternate(
    contenders: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    number: Mapping[str, int] | None = None,
) -> dict[str, list[float]]:
    """Times each contender ``repeats`` times, interleaved: round ``r`` runs
    every contender once, starting at the ``r``-th, so drift in the machine's
    speed hits all of them alike. Each sample is the mean seconds per call over
    ``number[name]`` back-to-back calls (default 1); each ``fn`` must block until
    its result exists."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            calls = number[name] if number is not None else 1
            samples[name].append(_seconds_per_call(contenders[name], calls))
    return samples


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence of timings."""
    if not values:
        raise ValueError("median of no timings; expected at least one sample")
    return float(statistics.median(values))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either side was not measured."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; None cells print as an em dash."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    for row in rows:
        cells = ["—" if cell is None else str(cell) for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt_ratio(value: float | None, decimals: int = 2) -> str | None:
    """A ratio with two decimals, or as many as asked."""
    return None if value is None else f"{value:.{decimals}f}"


def targets_table(targets: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of targets (``target``, ``limit``, ``measured``,
    ``verdict``), ratios with three decimals so that a value just past its
    limit does not read as the limit itself."""
    return markdown_table(
        ["target", "limit", "measured", "verdict"],
        [
            [t["target"], t["limit"], fmt_ratio(t["measured"], 3), t["verdict"]]
            for t in targets
        ],
    )


def fmt_seconds(value: float | None) -> str | None:
    """Seconds with a unit that keeps three significant digits readable."""
    if value is None:
        return None
    if value >= 1.0:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def verdict(measured: float | None, limit: float, *, at_least: bool = False) -> str:
    """'met', 'missed' or 'not measured' for a target ``measured <= limit``
    (or ``>= limit`` when ``at_least``)."""
    if measured is None:
        return "not measured"
    passed = measured >= limit if at_least else measured <= limit
    return "met" if passed else "missed"


def write_report(out: Path, name: str, payload: Mapping[str, Any], text: str) -> Path:
    """Writes ``name.json`` and ``name.md`` into ``out``, each through a
    temporary file so that an interrupted run never leaves a half-written one."""
    prepare_out(out)
    for suffix, content in (
        (".json", json.dumps(payload, indent=2, allow_nan=False) + "\n"),
        (".md", text + "\n"),
    ):
        target = out / f"{name}{suffix}"
        partial = target.with_name(target.name + ".partial")
        partial.write_text(content)
        partial.replace(target)
    return out / f"{name}.json"
