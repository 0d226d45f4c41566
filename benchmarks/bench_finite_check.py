"""What checking array parameters for NaN and inf costs a scan.

    python benchmarks/bench_finite_check.py [--repeats 21] [--json PATH]

``li_scan`` with per-neuron array parameters (``tau_mem_inv``,
``tau_syn_inv`` and ``v_leak`` of shape ``[N]``, float32), timed with the
check (:func:`li_core.validation.check_finite`, as shipped) and without it
(the function replaced by one that returns its argument), the two runs
interleaved so that a noisy machine slows both alike. Two workloads, on
NumPy and on torch on the CPU (when installed):

- W1: ``T=1000``, batch 32, 1024 neurons (the benchmarks' feed-forward scan);
- small: ``T=100``, batch 8, 256 neurons.

Prints the median seconds of each and their difference relative to the
scan without the check, ``(with - without) / without`` (noisy: it is the
difference of two noisy medians), then the median time of the three checks
alone (timed in a loop) and that as a share of the scan. The target is a
share under 2 %. The report, with the shares in percent (``figures``), goes
to docs/results/finite_check.json (see benchmarks/recording.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from recording import table, write_report

import li_core
from li_core import LIParameters, li_scan, validation

WORKLOADS = {"W1": (1000, 32, 1024), "small": (100, 8, 256)}


def inputs(library: str, steps: int, batch: int, neurons: int) -> tuple[Any, LIParameters]:
    """Random inputs and per-neuron parameters in ``library`` (float32)."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, batch, neurons)).astype(np.float32)
    fields = (
        rng.uniform(50, 200, neurons).astype(np.float32),
        rng.uniform(100, 300, neurons).astype(np.float32),
        rng.normal(0, 0.1, neurons).astype(np.float32),
    )
    if library == "torch":
        import torch

        return torch.from_numpy(xs), LIParameters(*(torch.from_numpy(f) for f in fields))
    return xs, LIParameters(*fields)


def interleaved(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn()`` with and without the check, timed
    alternately (the order flipping each round) after one warm-up each."""
    times: dict[bool, list[float]] = {True: [], False: []}
    shipped = validation.check_finite
    for k in range(repeats + 1):
        for checked in (True, False) if k % 2 else (False, True):
            validation.check_finite = shipped if checked else (lambda name, value: value)
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if k:
                times[checked].append(elapsed)
    validation.check_finite = shipped
    return statistics.median(times[True]), statistics.median(times[False])


def check_alone(p: LIParameters, repeats: int, inner: int = 200) -> float:
    """Median seconds of checking the three parameters once (``inner`` calls per timing)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            for k, value in enumerate(p):
                validation.check_finite(LIParameters._fields[k], value)
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--json", default=None, help="where to store the report (default docs/results/finite_check.json)"
    )
    args = parser.parse_args()
    libraries = ["numpy"]
    if any(info.name == "torch" and info.available for info in li_core.list_backends()):
        libraries.append("torch")
    figures: dict[str, float] = {}
    rows = []
    for library in libraries:
        for workload, shape in WORKLOADS.items():
            xs, p = inputs(library, *shape)

            def scan(xs: Any = xs, p: LIParameters = p) -> Any:
                return li_scan(xs, None, None, p, dt=1e-3)

            with_check, without = interleaved(scan, args.repeats)
            alone = check_alone(p, args.repeats)
            key = f"{library}, {workload}"
            figures.update(
                {
                    f"{key}, with the check": with_check,
                    f"{key}, without": without,
                    f"{key}, difference (%)": 100 * (with_check - without) / without,
                    f"{key}, the check alone": alone,
                    f"{key}, the check's share (%)": 100 * alone / without,
                }
            )
            rows.append(
                [
                    library,
                    workload,
                    f"{with_check * 1e3:.3f} ms",
                    f"{without * 1e3:.3f} ms",
                    f"{(with_check - without) / without:.2%}",
                    f"{alone * 1e6:.1f} µs",
                    f"{alone / without:.3%}",
                ]
            )
    figures["the check's largest share (%)"] = max(v for k, v in figures.items() if k.endswith("share (%)"))
    headers = ["library", "workload", "with the check", "without", "difference", "the check alone", "its share"]
    print("\n".join(" | ".join(row) for row in [headers, *rows]))
    settings = {"repeats": args.repeats, "clock": "wall", "dtype": "float32", "workloads": WORKLOADS}
    print(
        "stored in",
        write_report("finite_check", settings, figures, {"shares": table(headers, rows)}, args.json, libraries),
    )


if __name__ == "__main__":
    main()
