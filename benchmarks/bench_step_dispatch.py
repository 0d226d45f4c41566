"""What the public step costs beyond the step itself, NumPy and torch.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step_dispatch.py [--rounds 31]

(one BLAS thread: on a shared machine the matmul of the ``li_step`` rows
otherwise waits for its threads, and the ratio measures that).

float32, batch 8, 256 neurons, a state of the input's shape, the default
parameters (Python floats), dt = 1e-3. Each public call is timed in
interleaved rounds (:func:`li_core.bench.host.interleaved`) beside its
yardstick, :func:`li_core.bench.raw_step.raw_step` (for ``li_step`` after
the same ``x @ w.T`` through weights [256, 256]); figures are medians of
the time per call, ratios are of medians. The torch rows time tiny tensors
([2, 8]), where a call is all dispatch.
"""

from __future__ import annotations

import argparse

import numpy as np

from li_core import LIParameters, LIState, li_feed_forward_step, li_step
from li_core.bench.host import interleaved
from li_core.bench.raw_step import raw_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds (default 31)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    p, dt = LIParameters(), 1e-3
    a, d = dt * p.tau_mem_inv, dt * p.tau_syn_inv

    def array(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x, spikes, w = array(8, 256), array(8, 256), array(256, 256)
    state = LIState(array(8, 256), array(8, 256))
    candidates = {
        "raw step": lambda: raw_step(x, state, a, d, p.v_leak),
        "li_feed_forward_step numpy": lambda: li_feed_forward_step(x, state, p, dt, backend="numpy"),
        "li_feed_forward_step None": lambda: li_feed_forward_step(x, state, p, dt),
        "raw x @ w.T + step": lambda: raw_step(spikes @ w.T, state, a, d, p.v_leak),
        "li_step numpy": lambda: li_step(spikes, state, w, p, dt, backend="numpy"),
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        tx = torch.from_numpy(array(2, 8))
        tstate = LIState(torch.from_numpy(array(2, 8)), torch.from_numpy(array(2, 8)))
        candidates["raw step torch"] = lambda: raw_step(tx, tstate, a, d, p.v_leak)
        candidates["li_feed_forward_step torch"] = lambda: li_feed_forward_step(tx, tstate, p, dt, backend="torch")
    times = interleaved(candidates, lambda result: None, args.rounds)
    yardstick = {
        "li_feed_forward_step numpy": "raw step",
        "li_feed_forward_step None": "raw step",
        "li_step numpy": "raw x @ w.T + step",
        "li_feed_forward_step torch": "raw step torch",
    }
    for name, seconds in times.items():
        ratio = f"   {seconds / times[yardstick[name]]:5.2f}x {yardstick[name]}" if name in yardstick else ""
        print(f"{name:<28}{seconds * 1e6:8.2f} us{ratio}")


if __name__ == "__main__":
    main()
