"""Run every experiment (full or ``--quick``) and write a markdown report that embeds
their figures, their measured numbers and each claim's verdict."""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import jax
from _experiment_common import build_parser, prepare_out

EXPERIMENTS = (
    "gallery",
    "gradient_squeeze",
    "dying_relu",
    "training_speed",
    "softmax_digits",
)
FULL_OUT = Path("docs/figures")
FULL_RESULTS = Path("docs/results.md")
QUICK_OUT = Path("out/report-quick")


def run_experiments(
    names: Sequence[str], out: Path, quick: bool, data_dir: Path | None, seed: int
) -> dict[str, dict]:
    """Run each experiment's ``main`` in this process and collect its result."""
    results = {}
    for name in names:
        module = importlib.import_module(name)
        argv = ["--out", str(out), "--seed", str(seed)]
        if quick:
            argv.append("--quick")
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        started = time.perf_counter()
        print(f"== {name} ==", flush=True)
        results[name] = module.main(argv)
        results[name]["run_seconds"] = time.perf_counter() - started
    return results


def render(
    results: dict[str, dict], figures_link: str, quick: bool, command: str
) -> str:
    """The whole report: a header, a verdict table and one section per experiment."""
    lines = [
        "# The article's claims, measured",
        "",
        "Every number and figure below was produced by one command on real MNIST:",
        "",
        "```",
        command,
        "```",
        "",
        f"Mode: {'quick (small subsets, few steps)' if quick else 'full'}; "
        f"JAX {jax.__version__} on {jax.devices()[0].platform.upper()} "
        f"({os.cpu_count()} cores, {platform.machine()}); "
        f"generated {datetime.date.today().isoformat()}; "
        f"total run time {sum(r['run_seconds'] for r in results.values()):.0f} s. "
        "Wall times depend on the machine and on whatever else runs on it: compare "
        "activations within one run, not against other machines.",
        "",
    ]
    verdicts = [
        f"- *{results[name]['claim']}*: {results[name]['verdict']}"
        for name in results
        if "verdict" in results[name]
    ]
    if verdicts:
        lines += ["## Verdicts", "", *verdicts, ""]
    for name, result in results.items():
        module = importlib.import_module(name)
        lines += [
            module.summarize(result, figures_link).rstrip(),
            "",
            f"Measured numbers: [`{name}.json`]({figures_link}/{name}.json); "
            f"this experiment alone: `python scripts/{name}.py --help`.",
            "",
        ]
    return "\n".join(lines)


def output_paths(
    out: Path | None, results: Path | None, *, quick: bool
) -> tuple[Path, Path]:
    """Where the figures and the markdown go. A quick run never lands on the
    committed full-run figures unless both paths are given explicitly."""
    out = out or (QUICK_OUT if quick else FULL_OUT)
    if results is None:
        results = out / "results.md" if quick or out != FULL_OUT else FULL_RESULTS
    return out, results


def main(argv: Sequence[str] | None = None) -> dict:
    parser = build_parser(
        "report", __doc__, out_default=f"{FULL_OUT}, or {QUICK_OUT} with --quick"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"markdown file to write (default: {FULL_RESULTS}; results.md inside "
        "--out when --out or --quick is given)",
    )
    parser.add_argument(
        "--only",
        default=",".join(EXPERIMENTS),
        help="comma-separated experiments to run (default: all of %(default)s)",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        parser.error(
            f"--only: unknown experiment(s) {unknown}; choose from {EXPERIMENTS}"
        )

    out, results_path = output_paths(args.out, args.results, quick=args.quick)
    prepare_out(out)
    results_path.parent.mkdir(parents=True, exist_ok=True)

    results = run_experiments(names, out, args.quick, args.data_dir, args.seed)
    figures_link = Path(os.path.relpath(out, results_path.parent)).as_posix()
    command = "python scripts/report.py" + (" --quick" if args.quick else "")
    markdown = render(results, figures_link, args.quick, command)
    partial = results_path.with_suffix(".md.partial")
    partial.write_text(markdown + "\n")
    partial.replace(results_path)
    print(f"wrote {results_path}")
    return {"results_path": str(results_path), "experiments": results}


if __name__ == "__main__":
    main()
