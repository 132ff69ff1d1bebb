"""Times every jax_acts activation against its jax.nn counterpart (and PyTorch's,
when installed), forward and forward+backward, beside a plain memory copy of the
same array, and reports ratios and the fraction of copy bandwidth each reaches.

Run ``python scripts/bench_activations.py`` (``--quick`` for a one-minute check);
it prints markdown tables and writes ``bench_activations.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special
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
    prepare_out,
    ratio,
    reuse_large_buffers,
    targets_table,
    verdict,
    warm_up,
    write_report,
)

import jax_acts as A

logger = logging.getLogger("bench_activations")

# The reference kernels: one read and one write of every element, nothing else.
# XLA's copy is not always its fastest stream (on CPU a negation beats it), so
# the faster of the two stands for the memory-copy bandwidth.
COPY_KERNELS = {"copy": jax.jit(jnp.copy), "negate": jax.jit(jnp.negative)}

NAME = "bench_activations"
SIZES = (1_000, 10_000, 100_000, 1_000_000, 16_000_000)
QUICK_SIZES = (1_000, 100_000)
DTYPES = ("float32", "bfloat16")
MODES = ("forward", "forward+backward")
# Normalisers act along the last axis; their inputs are rows of this many logits.
ROW_LENGTH = 1_000
TARGET_FORWARD = 1.0
TARGET_FORWARD_BACKWARD = 1.15
TARGET_RELU_COPY_FRACTION = 0.8
TARGET_RELU_SIZE = 16_000_000


@dataclass(frozen=True)
class Counterpart:
    """What a user would call instead of one of ours: the JAX function (labelled
    by its call) and PyTorch's, as a function of ``(torch, tensor)``."""

    jax_label: str | None
    jax_fn: Callable[[jax.Array], jax.Array] | None
    torch_fn: Callable[[Any, Any], Any] | None
    normaliser: bool = False


def _functional(torch: Any) -> Any:
    return torch.nn.functional


# Same defaults on both sides (leaky slope 0.01, alpha 1, exact gelu), so every
# pair computes the same function.
COUNTERPARTS: dict[str, Counterpart] = {
    "sigmoid": Counterpart("jax.nn.sigmoid", jax.nn.sigmoid, lambda t, x: t.sigmoid(x)),
    "log_sigmoid": Counterpart(
        "jax.nn.log_sigmoid",
        jax.nn.log_sigmoid,
        lambda t, x: _functional(t).logsigmoid(x),
    ),
    "tanh": Counterpart("jax.nn.tanh", jax.nn.tanh, lambda t, x: t.tanh(x)),
    "arctan": Counterpart("jnp.arctan", jnp.arctan, lambda t, x: t.atan(x)),
    "gudermannian": Counterpart(None, None, None),
    "erf": Counterpart(
        "jax.scipy.special.erf", jax.scipy.special.erf, lambda t, x: t.erf(x)
    ),
    "generalized_logistic": Counterpart(None, None, None),
    "algebraic_sigmoid": Counterpart(None, None, None),
    "soft_sign": Counterpart(
        "jax.nn.soft_sign", jax.nn.soft_sign, lambda t, x: _functional(t).softsign(x)
    ),
    "hard_sigmoid": Counterpart(
        "jax.nn.hard_sigmoid",
        jax.nn.hard_sigmoid,
        lambda t, x: _functional(t).hardsigmoid(x),
    ),
    "hard_tanh": Counterpart(
        "jax.nn.hard_tanh", jax.nn.hard_tanh, lambda t, x: _functional(t).hardtanh(x)
    ),
    "relu": Counterpart("jax.nn.relu", jax.nn.relu, lambda t, x: t.relu(x)),
    "relu6": Counterpart(
        "jax.nn.relu6", jax.nn.relu6, lambda t, x: _functional(t).relu6(x)
    ),
    "leaky_relu": Counterpart(
        "jax.nn.leaky_relu",
        jax.nn.leaky_relu,
        lambda t, x: _functional(t).leaky_relu(x, 0.01),
    ),
    "elu": Counterpart("jax.nn.elu", jax.nn.elu, lambda t, x: _functional(t).elu(x)),
    "celu": Counterpart(
        "jax.nn.celu", jax.nn.celu, lambda t, x: _functional(t).celu(x)
    ),
    "selu": Counterpart(
        "jax.nn.selu", jax.nn.selu, lambda t, x: _functional(t).selu(x)
    ),
    "gelu": Counterpart(
        "jax.nn.gelu(approximate=False)",
        lambda x: jax.nn.gelu(x, approximate=False),
        lambda t, x: _functional(t).gelu(x),
    ),
    "silu": Counterpart(
        "jax.nn.silu", jax.nn.silu, lambda t, x: _functional(t).silu(x)
    ),
    "softplus": Counterpart(
        "jax.nn.softplus", jax.nn.softplus, lambda t, x: _functional(t).softplus(x)
    ),
    "mish": Counterpart(
        "jax.nn.mish", jax.nn.mish, lambda t, x: _functional(t).mish(x)
    ),
    "softmax": Counterpart(
        "jax.nn.softmax", jax.nn.softmax, lambda t, x: t.softmax(x, -1), True
    ),
    "log_softmax": Counterpart(
        "jax.nn.log_softmax",
        jax.nn.log_softmax,
        lambda t, x: t.log_softmax(x, -1),
        True,
    ),
    "logsumexp": Counterpart(
        "jax.nn.logsumexp(axis=-1)",
        lambda x: jax.nn.logsumexp(x, axis=-1),
        lambda t, x: t.logsumexp(x, -1),
        True,
    ),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses and checks the command line (``--functions`` against the library)."""
    parser = build_parser(
        NAME,
        "Time jax_acts activations against jax.nn and PyTorch beside a memory copy.",
        repeats=(7, 3),
        repeated="samples",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="comma-separated element counts, multiples of "
        f"{ROW_LENGTH} (default: {','.join(map(str, SIZES))}, "
        f"or {','.join(map(str, QUICK_SIZES))} with --quick)",
    )
    parser.add_argument(
        "--dtypes",
        type=_dtypes,
        default=DTYPES,
        help=f"comma-separated floating dtypes (default: {','.join(DTYPES)})",
    )
    parser.add_argument(
        "--allocator",
        choices=("reuse", "system"),
        default="reuse",
        help="reuse: have glibc recycle large buffers, so that 16M-element outputs "
        "are not page-faulted afresh on every call; system: leave malloc as is "
        "(default: reuse)",
    )
    parser.add_argument(
        "--functions",
        type=lambda text: tuple(name for name in text.split(",") if name),
        default=None,
        help="comma-separated jax_acts names (default: every activation)",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    args.repeats = args.repeats or (3 if args.quick else 7)
    available = activation_names()
    args.functions = args.functions or available
    unknown = [name for name in args.functions if name not in available]
    if unknown:
        parser.error(
            f"--functions {','.join(unknown)}: not a jax_acts activation; "
            f"expected some of {','.join(available)}"
        )
    return args


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(part)) for part in text.split(",") if part)
    except ValueError:
        sizes = ()
    if not sizes or any(size < ROW_LENGTH or size % ROW_LENGTH for size in sizes):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated element counts that are positive "
            f"multiples of {ROW_LENGTH}, such as 1000,1e6"
        )
    return sizes


def _dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(part for part in text.split(",") if part)
    for name in dtypes:
        try:
            valid = jnp.issubdtype(jnp.dtype(name), jnp.floating)
        except TypeError:
            valid = False
        if not valid:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a floating dtype; expected e.g. float32,bfloat16"
            )
    if not dtypes:
        raise argparse.ArgumentTypeError("expected at least one dtype, e.g. float32")
    return dtypes


def activation_names() -> tuple[str, ...]:
    """Every elementwise activation the library registers, then its softmax
    normalisers, once each (an alias such as ``swish`` for ``silu`` would time
    the same function twice); known names in the table's order, new ones after."""
    registered = set(A.names())
    normalisers = {n for n, c in COUNTERPARTS.items() if c.normaliser}
    candidates = [n for n in COUNTERPARTS if n in registered or n in normalisers]
    candidates += sorted(registered - set(COUNTERPARTS))
    names: list[str] = []
    seen: list[Callable] = []
    for name in candidates:
        fn = activation(name)
        if not any(fn is other for other in seen):
            seen.append(fn)
            names.append(name)
    return tuple(names)


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Our function of that name, with its default parameters; normalisers act
    on the last axis (``logsumexp``, like ``jax.nn``'s, reduces everything by
    default)."""
    if name in A.names():
        return A.get(name)
    if counterpart(name).normaliser:
        return functools.partial(getattr(A, name), axis=-1)
    return getattr(A, name)


def counterpart(name: str) -> Counterpart:
    """The table's entry, or no counterpart for an activation only we have."""
    return COUNTERPARTS.get(name, Counterpart(None, None, None))


def make_input(size: int, dtype: str, normaliser: bool, seed: int) -> jax.Array:
    """Standard normal values scaled by 4, so both sides of every kink and a
    share of the tails are exercised; rows of logits for the normalisers."""
    shape = (size // ROW_LENGTH, ROW_LENGTH) if normaliser else (size,)
    x = 4.0 * jax.random.normal(jax.random.key(seed), shape, jnp.float32)
    return block(x.astype(dtype))


def to_torch(torch: Any, x: jax.Array, device: str) -> Any:
    """The same values as a PyTorch tensor of the same dtype on ``device``."""
    host = np.array(x.astype(jnp.float32))
    return torch.from_numpy(host).to(device=device, dtype=getattr(torch, x.dtype.name))


def jax_runner(fn: Callable, x: jax.Array, mode: str) -> Callable[[], Any]:
    """A call that runs ``fn`` (or the gradient of its sum) on ``x`` and waits."""
    if mode == "forward":
        compiled = jax.jit(fn)
    else:
        compiled = jax.jit(jax.grad(lambda v: jnp.sum(fn(v))))
    return lambda: block(compiled(x))


def torch_runner(
    torch: Any, fn: Callable, x: Any, mode: str, device: str
) -> Callable[[], Any]:
    """A call that runs PyTorch's ``fn`` (or the gradient of its sum) on ``x``
    and waits for the device."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if mode == "forward":

        def run() -> Any:
            with torch.no_grad():
                result = fn(torch, x)
            sync()
            return result

        return run

    leaf = x.detach().requires_grad_(True)

    def run_grad() -> Any:
        (grad,) = torch.autograd.grad(fn(torch, leaf).sum(), leaf)
        sync()
        return grad

    return run_grad


def bytes_moved(fn: Callable, x: jax.Array, mode: str) -> int:
    """Least traffic a kernel needs: the input read once and the output written
    once (for forward+backward the output is the gradient, shaped like x)."""
    if mode == "forward+backward":
        return 2 * x.size * x.dtype.itemsize
    out = jax.eval_shape(fn, x)
    return (x.size + out.size) * x.dtype.itemsize


def measure_group(
    name: str,
    x: jax.Array,
    mode: str,
    *,
    torch: Any | None,
    torch_device: str,
    repeats: int,
    min_sample_seconds: float,
) -> dict[str, Any]:
    """Times ours, the JAX counterpart, PyTorch's and a copy of ``x``, alternated,
    and returns one result row with medians, ratios and bandwidths."""
    theirs = counterpart(name)
    ours_fn = activation(name)
    contenders = {"ours": jax_runner(ours_fn, x, mode)}
    if theirs.jax_fn is not None:
        contenders["jax"] = jax_runner(theirs.jax_fn, x, mode)
    if torch is not None and theirs.torch_fn is not None:
        x_torch = to_torch(torch, x, torch_device)
        contenders["torch"] = torch_runner(
            torch, theirs.torch_fn, x_torch, mode, torch_device
        )
    for key, kernel in COPY_KERNELS.items():
        contenders[key] = lambda kernel=kernel: block(kernel(x))

    first_call = {key: warm_up(fn) for key, fn in contenders.items()}
    number = calls_per_sample(contenders, min_sample_seconds)
    samples = alternate(contenders, repeats=repeats, number=number)
    seconds = {key: median(values) for key, values in samples.items()}

    moved = bytes_moved(ours_fn, x, mode)
    copy_bytes = 2 * x.size * x.dtype.itemsize
    ours_bandwidth = moved / seconds["ours"]
    copy_bandwidth = copy_bytes / min(seconds[key] for key in COPY_KERNELS)
    return {
        "function": name,
        "dtype": x.dtype.name,
        "size": int(x.size),
        "shape": list(x.shape),
        "mode": mode,
        "baseline": theirs.jax_label,
        "seconds": seconds,
        "samples": samples,
        "calls_per_sample": number,
        "first_call_seconds": first_call,
        "ratio_vs_jax": ratio(seconds["ours"], seconds.get("jax")),
        "ratio_vs_torch": ratio(seconds["ours"], seconds.get("torch")),
        "bytes_moved": moved,
        "ours_bandwidth_gbps": ours_bandwidth / 1e9,
        "copy_bandwidth_gbps": copy_bandwidth / 1e9,
        "fraction_of_copy": ours_bandwidth / copy_bandwidth,
    }


def summarise(rows: Sequence[dict[str, Any]], dtypes: Sequence[str]) -> dict:
    """Median ratios per dtype and mode (over functions with a ``jax.nn``
    counterpart, all sizes), copy bandwidth per size, and the relu figure."""
    summary: dict[str, Any] = {
        "median_ratio_vs_jax_nn": {},
        "median_ratio_vs_torch": {},
    }
    for dtype in dtypes:
        for mode in MODES:
            group = [r for r in rows if r["dtype"] == dtype and r["mode"] == mode]
            vs_jax = [
                r["ratio_vs_jax"]
                for r in group
                if r["ratio_vs_jax"] is not None and r["baseline"].startswith("jax.nn")
            ]
            vs_torch = [r["ratio_vs_torch"] for r in group if r["ratio_vs_torch"]]
            key = f"{dtype} {mode}"
            summary["median_ratio_vs_jax_nn"][key] = median(vs_jax) if vs_jax else None
            summary["median_ratio_vs_torch"][key] = (
                median(vs_torch) if vs_torch else None
            )

    summary["copy_bandwidth_gbps"] = {
        f"{dtype} {size}": median(
            [
                r["copy_bandwidth_gbps"]
                for r in rows
                if (r["dtype"], r["size"]) == (dtype, size)
            ]
        )
        for dtype in dtypes
        for size in sorted({r["size"] for r in rows})
        if any((r["dtype"], r["size"]) == (dtype, size) for r in rows)
    }
    relu = [
        r
        for r in rows
        if (r["function"], r["dtype"], r["mode"]) == ("relu", "float32", "forward")
    ]
    largest = max(relu, key=lambda r: r["size"]) if relu else None
    summary["relu_fraction_of_copy"] = (
        {"size": largest["size"], "fraction": largest["fraction_of_copy"]}
        if largest
        else None
    )
    return summary


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it was met (float32)."""
    relu = summary["relu_fraction_of_copy"]
    relu_value = relu["fraction"] if relu and relu["size"] == TARGET_RELU_SIZE else None
    forward = summary["median_ratio_vs_jax_nn"].get("float32 forward")
    backward = summary["median_ratio_vs_jax_nn"].get("float32 forward+backward")
    return [
        {
            "target": "median ours/jax.nn, float32 forward",
            "limit": f"<= {TARGET_FORWARD}",
            "measured": forward,
            "verdict": verdict(forward, TARGET_FORWARD),
        },
        {
            "target": "median ours/jax.nn, float32 forward+backward",
            "limit": f"<= {TARGET_FORWARD_BACKWARD}",
            "measured": backward,
            "verdict": verdict(backward, TARGET_FORWARD_BACKWARD),
        },
        {
            "target": "relu forward at 16M float32, fraction of copy bandwidth",
            "limit": f">= {TARGET_RELU_COPY_FRACTION}",
            "measured": relu_value,
            "verdict": verdict(relu_value, TARGET_RELU_COPY_FRACTION, at_least=True),
        },
    ]


def count(size: int) -> str:
    """An element count as ``1e3`` or ``1.6e7``: short, and exact for the sizes
    used here."""
    exponent = len(str(size)) - 1
    return f"{size / 10**exponent:g}e{exponent}"


def render(
    env: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    target_rows: Sequence[dict[str, Any]],
    args: argparse.Namespace,
) -> str:
    """The markdown report: environment, copy bandwidth, a table per dtype
    and mode, and the targets."""
    sizes = sorted({r["size"] for r in rows})
    largest = sizes[-1]
    parts = [f"## Activation benchmark\n\n{describe_environment(env)}"]
    parts.append(
        "Ratios are medians of ours over theirs from the same process, contenders "
        f"alternated, {args.repeats} samples each, compilation excluded; "
        "below 1 means ours is faster. Bandwidth counts the input read and the "
        "output written once; the copy bandwidth is that of the faster of "
        "`jnp.copy` and `jnp.negative` of the same array, timed in the same rounds."
    )
    copy_rows = [
        [
            dtype,
            count(size),
            f"{summary['copy_bandwidth_gbps'][f'{dtype} {size}']:.1f}",
        ]
        for dtype in args.dtypes
        for size in sizes
        if f"{dtype} {size}" in summary["copy_bandwidth_gbps"]
    ]
    parts.append(
        "### Memory copy\n\n"
        + markdown_table(
            ["dtype", "elements", "copy GB/s (faster of copy, negate)"], copy_rows
        )
    )
    for dtype in args.dtypes:
        for mode in MODES:
            group = [r for r in rows if r["dtype"] == dtype and r["mode"] == mode]
            if not group:
                continue
            by_key = {(r["function"], r["size"]): r for r in group}
            table_rows = []
            for name in args.functions:
                at_largest = by_key.get((name, largest))
                table_rows.append(
                    [f"`{name}`", counterpart(name).jax_label]
                    + [
                        fmt_ratio(by_key[(name, size)]["ratio_vs_jax"])
                        if (name, size) in by_key
                        else None
                        for size in sizes
                    ]
                    + [
                        fmt_seconds(at_largest["seconds"]["ours"])
                        if at_largest
                        else None,
                        fmt_ratio(at_largest["ratio_vs_torch"]) if at_largest else None,
                        f"{at_largest['fraction_of_copy']:.0%}" if at_largest else None,
                    ]
                )
            headers = (
                ["function", "JAX counterpart"]
                + [f"ours/JAX {count(size)}" for size in sizes]
                + [
                    f"ours time {count(largest)}",
                    f"ours/torch {count(largest)}",
                    f"% of copy {count(largest)}",
                ]
            )
            parts.append(
                f"### {dtype}, {mode}\n\n" + markdown_table(headers, table_rows)
            )
    parts.append(
        "### Targets (float32; medians over every size and every function with a "
        "`jax.nn` counterpart)\n\n" + targets_table(target_rows)
    )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Before JAX's and PyTorch's thread pools start (see reuse_large_buffers).
    allocator = reuse_large_buffers() if args.allocator == "reuse" else "system default"
    prepare_out(args.out)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    torch, torch_note = load_torch(not args.no_torch, args.torch_threads)
    env = environment(torch, torch_note)
    env["allocator"] = allocator
    torch_device = "cpu"
    if torch is not None and env["gpu"] and torch.cuda.is_available():
        torch_device = "cuda"
    env["torch_device"] = torch_device if torch is not None else None
    logger.info(describe_environment(env))

    min_sample_seconds = 0.002 if args.quick else 0.02
    rows = []
    for dtype in args.dtypes:
        for size in args.sizes:
            logger.info("timing %s, %d elements", dtype, size)
            inputs = {
                normaliser: make_input(size, dtype, normaliser, seed=0)
                for normaliser in (False, True)
            }
            for name in args.functions:
                x = inputs[counterpart(name).normaliser]
                for mode in MODES:
                    rows.append(
                        measure_group(
                            name,
                            x,
                            mode,
                            torch=torch,
                            torch_device=torch_device,
                            repeats=args.repeats,
                            min_sample_seconds=min_sample_seconds,
                        )
                    )

    summary = summarise(rows, args.dtypes)
    target_rows = targets(summary)
    text = render(env, rows, summary, target_rows, args)
    print(text)
    payload = {
        "benchmark": NAME,
        "quick": args.quick,
        "settings": {
            "sizes": list(args.sizes),
            "dtypes": list(args.dtypes),
            "functions": list(args.functions),
            "repeats": args.repeats,
            "row_length": ROW_LENGTH,
            "min_sample_seconds": min_sample_seconds,
        },
        "environment": env,
        "summary": summary,
        "targets": target_rows,
        "results": rows,
    }
    path = write_report(args.out, NAME, payload, text)
    logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
