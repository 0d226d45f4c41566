"""The first call in a fresh process, with the compiled loops on and off.

    python benchmarks/bench_first_call.py [--repeats 7]

``import li_core`` plus a first tiny NumPy scan, each in a new process,
the two variants interleaved (:mod:`li_core.bench.first_call`); prints the
medians and their difference, in seconds.
"""

from __future__ import annotations

import argparse

from li_core.bench.first_call import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    args = parser.parse_args()
    result = measure(args.repeats)
    print(f"compiled loops on:  {result['on']:.3f} s  ({result['compiled'] or 'they ran'})")
    print(f"LI_NUMBA=0:         {result['off']:.3f} s")
    print(f"extra:              {result['extra']:+.3f} s  (medians of {args.repeats} interleaved runs each)")
    print(f"whole processes (start-up and exit): {result['on_process']:.3f} s on, {result['off_process']:.3f} s off")
    print("on runs: ", " ".join(f"{s:.3f}" for s in result["on_runs"]))
    print("off runs:", " ".join(f"{s:.3f}" for s in result["off_runs"]))


if __name__ == "__main__":
    main()
