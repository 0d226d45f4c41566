"""The blocked scan against the loop with NumPy: the figures of docs/model.md.

    python benchmarks/bench_blocked.py [--repeats 5] [--clock process|wall] [--json PATH]

float32, per-neuron parameters, one batch of ``n`` neurons, starting at rest.
Every time is the median of ``--repeats`` interleaved rounds after a warm-up,
by default of the process CPU time (the machine may be shared). Measured:

``neurons``
    20,000 steps of 1 to 2048 neurons per step: the ``numpy`` backend's loop
    (``li_backends.numpy.BLOCKED = False``), the blocked scan with its default
    lane scan (:func:`li_core.blocked_scan.scan_lanes`) and with the backend's
    loop as the lane scan (what the backend runs), and ``x.copy()``. The chunk
    length is the rule's for 20,000 steps at every width, so the rows above
    ``MAX_BLOCKED_NEURONS`` show what the rule avoids.
``crossover``
    the same three at 512 neurons x 100,000 steps and 1024 x 50,000.
``short``
    16 neurons at 32, 64 and 128 steps: loop against blocked (the backend's
    loop as lane scan, the rule's chunk length even below ``MIN_BLOCKED_STEPS``).
``long``
    16 x 100,000 and 256 x 20,000: loop, blocked, ``x.copy()``; and phase 3
    done the other way, adding each chunk's input-free response to phase 1's
    outputs ("add") instead of scanning the chunks again ("rescan"), timed
    side by side, both against the float64 reference as a fraction of the
    float32 tolerance.
``accuracy``
    the conformance suite's slow case (:func:`li_core.testing.cases.slow_case`,
    ``dt*tau_inv`` from 1 down to 1e-4, 20,000 steps) in float32: the loop and
    the blocked scan with chunks of 2 and 7 steps and the rule's, as fractions
    of the tolerance for ``v`` and ``i`` (the recorded sequences); beside them
    the designs these replaced, rebuilt here: the carry with the decays stored
    as ``c^L`` and ``b^L``, the carry adding the large state last, and the
    loop in coefficient form ``c*v + a*(j + v_leak)``, ``b*j``.

The report goes to docs/results/blocked.json (see benchmarks/recording.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from recording import CLOCKS, medians, ms, table, write_report

import li_backends.numpy as numpy_backend
import li_core
from li_core import LIParameters, LIState, reference
from li_core.blocked_scan import (
    blocked_scan,
    carry,
    chunk_length,
    chunk_transition,
    from_chunks,
    rescan_chunks,
    to_chunks,
)
from li_core.testing.cases import slow_case
from li_core.testing.tolerances import error_ratio

DT = 1e-3
WIDTHS = [1, 16, 64, 256, 512, 1024, 2048]
CROSSOVER = [(100_000, 512), (50_000, 1024)]
SHORT = [32, 64, 128]
LONG = [(100_000, 16), (20_000, 256)]


def case(steps: int, neurons: int, dtype: Any = np.float32) -> tuple[np.ndarray, LIState, LIParameters]:
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, neurons)).astype(dtype)
    p = LIParameters(
        rng.uniform(50, 400, neurons).astype(dtype),
        rng.uniform(50, 400, neurons).astype(dtype),
        (0.1 * rng.normal(size=neurons)).astype(dtype),
    )
    rest = LIState(p.v_leak.copy(), np.zeros(neurons, dtype=dtype))
    return xs, rest, p


def rule(steps: int) -> int:
    """The rule's chunk length for ``steps``, whatever the width."""
    return chunk_length(steps, 1) or max(1, round(0.7 * math.sqrt(steps)))


def loop(xs: np.ndarray, p: LIParameters) -> Callable[[], object]:
    def run() -> object:
        saved, numpy_backend.BLOCKED = numpy_backend.BLOCKED, False
        try:
            return li_core.li_scan(xs, p=p, dt=DT, backend="numpy")
        finally:
            numpy_backend.BLOCKED = saved

    return run


def blocked(xs: np.ndarray, rest: LIState, p: LIParameters, lane_scan: Any) -> Callable[[], object]:
    length = rule(xs.shape[0])
    return lambda: blocked_scan(xs, rest, None, p, DT, lane_scan=lane_scan, length=length)


def add_response(xs: np.ndarray, start: LIState, p: LIParameters, lane_scan: Any) -> np.ndarray:
    """The blocked scan's voltages with phase 3 replaced: phase 1's voltages
    from rest plus ``M^t`` applied to each chunk's entering deviation, with
    ``M^1 .. M^L`` recorded by the transition scan (no tail: ``L`` divides ``T``)."""
    length = rule(xs.shape[0])
    x_chunks = to_chunks(xs, length)
    zeros = np.zeros(x_chunks.shape[1:], dtype=xs.dtype)
    lanes_p = LIParameters(*(q + zeros for q in p))
    from_rest, ends = lane_scan(x_chunks, LIState(lanes_p.v_leak, zeros), lanes_p, DT, False)
    entering = carry(ends, start, chunk_transition(p, DT, length, xs, lane_scan), p.v_leak)
    # M^t for t = 1..L: the transition scan's three lanes, recorded
    mem, syn = np.broadcast_arrays(p.tau_mem_inv, p.tau_syn_inv)
    three = LIParameters(syn, np.stack([mem, mem, syn]), np.array([1.0, 0.0, 1.0], dtype=xs.dtype)[:, None] + 0 * mem)
    begin = LIState(np.zeros((3, *mem.shape), xs.dtype), np.array([0.0, 1.0, 0.0], dtype=xs.dtype)[:, None] + 0 * mem)
    sequences, _ = lane_scan(np.zeros((length, 3, *mem.shape), xs.dtype), begin, three, DT, False)
    v_lost, i_to_v = sequences[:, 0, None, :], sequences[:, 1, None, :]  # [L, 1, n]
    u = entering.v - p.v_leak  # [K, n]
    voltages = from_rest + ((u - v_lost * u) + i_to_v * entering.i)
    return from_chunks(voltages)


def measure_neurons(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    lane = li_core.get_backend("numpy").loop
    rows = []
    for n in WIDTHS:
        xs, rest, p = case(20_000, n)
        times = medians(
            {
                "loop": loop(xs, p),
                "blocked": blocked(xs, rest, p, None),
                "lane": blocked(xs, rest, p, lane),
                "copy": xs.copy,
            },
            repeats,
            clock,
        )
        for name, value in times.items():
            figures[f"neurons {n} x 20000: {name}"] = value
        rows.append([n, ms(times["loop"]), ms(times["blocked"]), ms(times["lane"]), ms(times["copy"])])
        figures[f"neurons {n} x 20000: blocked / copy"] = times["lane"] / times["copy"]
        figures[f"neurons {n} x 20000: loop / blocked"] = times["loop"] / times["lane"]
        figures[f"neurons {n} x 20000: loop per step"] = times["loop"] / 20_000
    return rows


def measure_crossover(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    lane = li_core.get_backend("numpy").loop
    rows = []
    for steps, n in CROSSOVER:
        xs, rest, p = case(steps, n)
        times = medians(
            {"loop": loop(xs, p), "blocked": blocked(xs, rest, p, None), "lane": blocked(xs, rest, p, lane)},
            repeats,
            clock,
        )
        for name, value in times.items():
            figures[f"crossover {n} x {steps}: {name}"] = value
        rows.append([f"{n} x {steps:,}", ms(times["loop"]), ms(times["blocked"]), ms(times["lane"])])
    return rows


def measure_short(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    lane = li_core.get_backend("numpy").loop
    rows = []
    for steps in SHORT:
        xs, rest, p = case(steps, 16)
        times = medians({"loop": loop(xs, p), "blocked": blocked(xs, rest, p, lane)}, repeats, clock, number=50)
        for name, value in times.items():
            figures[f"short 16 x {steps}: {name}"] = value
        rows.append([steps, f"{times['loop'] * 1e6:.0f} µs", f"{times['blocked'] * 1e6:.0f} µs"])
    return rows


def measure_long(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    lane = li_core.get_backend("numpy").loop
    rows = []
    for steps, n in LONG:
        xs, rest, p = case(steps, n)
        times = medians(
            {
                "loop": loop(xs, p),
                "rescan": blocked(xs, rest, p, lane),
                "add": lambda xs=xs, rest=rest, p=p: add_response(xs, rest, p, lane),
                "copy": xs.copy,
            },
            repeats,
            clock,
        )
        x64, rest64, p64 = case(steps, n, np.float64)
        want, _ = reference.scan(x64, rest64, None, p64, DT)
        rescanned, _ = blocked(xs, rest, p, lane)()  # type: ignore[misc]  # a (voltages, state) pair
        accuracy = {
            "rescan": error_ratio(rescanned, want, "float32"),
            "add": error_ratio(add_response(xs, rest, p, lane), want, "float32"),
        }
        key = f"long {n} x {steps}"
        for name, value in times.items():
            figures[f"{key}: {name}"] = value
        for name, value in accuracy.items():
            figures[f"{key}: {name} / tolerance"] = value
        figures[f"{key}: loop / blocked"] = times["loop"] / times["rescan"]
        figures[f"{key}: blocked / copy"] = times["rescan"] / times["copy"]
        rows.append(
            [
                f"{n} x {steps:,}",
                ms(times["loop"]),
                ms(times["rescan"]),
                ms(times["add"]),
                ms(times["copy"]),
                f"{accuracy['rescan']:.2g}",
                f"{accuracy['add']:.2g}",
            ]
        )
    return rows


def carry_powers(ends: LIState, start: LIState, transition: Any, v_leak: Any) -> LIState:
    """Phase 2 with the decays stored as ``c^L`` and ``b^L`` (rounded near 1
    for slow neurons): the design that :func:`li_core.blocked_scan.carry` replaced."""
    decay_v, decay_i = 1 - transition.v_lost, 1 - transition.i_lost
    v, i = start
    vs, is_ = [v], [i]
    for k in range(ends.v.shape[0] - 1):
        v = v_leak + (decay_v * (v - v_leak) + transition.i_to_v * i + (ends.v[k] - v_leak))
        i = decay_i * i + ends.i[k]
        vs.append(v)
        is_.append(i)
    return LIState(np.stack(vs), np.stack(is_))


def carry_state_last(ends: LIState, start: LIState, transition: Any, v_leak: Any) -> LIState:
    """Phase 2 with the complements but the chunk's final state added last:
    ``v_e + (g_L i + (u - (1 - c^L) u))``, rounding the large state the same way every chunk."""
    v, i = start
    vs, is_ = [v], [i]
    for k in range(ends.v.shape[0] - 1):
        u = v - v_leak
        v = ends.v[k] + (transition.i_to_v * i + (u - transition.v_lost * u))
        i = ends.i[k] + (i - transition.i_lost * i)
        vs.append(v)
        is_.append(i)
    return LIState(np.stack(vs), np.stack(is_))


def blocked_with(carry_fn: Any, xs: np.ndarray, state: LIState, p: LIParameters, dt: float, length: int) -> LIState:
    """The recorded ``v`` and ``i`` of the blocked scan with phase 2 done by ``carry_fn``."""
    lane = li_core.get_backend("numpy").loop
    chunks = xs.shape[0] // length
    x_chunks = to_chunks(xs, length)
    zeros = np.zeros(x_chunks.shape[1:], dtype=xs.dtype)
    lanes_p = LIParameters(*(q + zeros for q in p))
    _, ends = lane(x_chunks, LIState(lanes_p.v_leak, zeros), lanes_p, dt, False)
    entering = carry_fn(ends, state, chunk_transition(p, dt, length, xs, lane), p.v_leak)
    _, states = rescan_chunks(x_chunks, entering, lanes_p, dt, True, lane)
    if chunks * length < xs.shape[0]:
        _, tail = lane(xs[chunks * length :], LIState(states.v[-1], states.i[-1]), p, dt, True)
        states = LIState(np.concatenate([states.v, tail.v]), np.concatenate([states.i, tail.i]))
    return states


def coefficient_form(xs: np.ndarray, state: LIState, p: LIParameters, dt: float) -> LIState:
    """The loop written with the decay factors, ``v = c*v + a*(j + v_leak)``,
    ``i = b*j``: the form the increment forms replaced."""
    a = (dt * p.tau_mem_inv).astype(xs.dtype)
    c, b = (1 - a).astype(xs.dtype), (1 - dt * p.tau_syn_inv).astype(xs.dtype)
    v, i = state
    vs, is_ = [], []
    for x in xs:
        j = i + x
        v = c * v + a * (j + p.v_leak)
        i = b * j
        vs.append(v)
        is_.append(i)
    return LIState(np.stack(vs), np.stack(is_))


def measure_accuracy(figures: dict[str, float]) -> list[list[Any]]:
    lane = li_core.get_backend("numpy").loop
    slow = slow_case(1e-4)
    _, want = reference.scan(slow.xs, slow.state, None, slow.p, slow.dt, record_states=True)
    xs = slow.xs.astype(np.float32)
    state = LIState(*(s.astype(np.float32) for s in slow.state))
    p = LIParameters(*(q.astype(np.float32) for q in slow.p))
    steps = xs.shape[0]
    runs = {"loop": lane(xs, state, p, slow.dt, True)[1]}
    for length in (2, 7, chunk_length(steps, math.prod(xs.shape[1:]))):
        runs[f"blocked, L = {length}"] = blocked_scan(xs, state, None, p, slow.dt, True, lane_scan=lane, length=length)[
            1
        ]
    for length in (2, 7, 20):
        runs[f"removed: decays stored as c^L, b^L, L = {length}"] = blocked_with(
            carry_powers, xs, state, p, slow.dt, length
        )
    runs["removed: state added last, L = 2"] = blocked_with(carry_state_last, xs, state, p, slow.dt, 2)
    runs["removed: loop in coefficient form"] = coefficient_form(xs, state, p, slow.dt)
    rows = []
    for name, got in runs.items():
        v, i = error_ratio(got.v, want.v, "float32"), error_ratio(got.i, want.i, "float32")
        figures[f"slow case, {name}: v / tolerance"] = v
        figures[f"slow case, {name}: i / tolerance"] = i
        rows.append([name, f"{v:.2g}", f"{i:.2g}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="process")
    parser.add_argument("--json", default=None, help="where to store the report (default docs/results/blocked.json)")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    figures: dict[str, float] = {}
    tables = {
        "neurons": table(
            ["neurons per step", "loop", "blocked", "blocked, NumPy loop as lane scan", "copy of the input"],
            measure_neurons(args.repeats, clock, figures),
        ),
        "crossover": table(
            ["neurons x steps", "loop", "blocked", "blocked, NumPy loop as lane scan"],
            measure_crossover(args.repeats, clock, figures),
        ),
        "short": table(["steps (16 neurons)", "loop", "blocked"], measure_short(args.repeats, clock, figures)),
        "long": table(
            [
                "neurons x steps",
                "loop",
                "blocked (rescan)",
                "blocked (add)",
                "copy of the input",
                "rescan / tolerance",
                "add / tolerance",
            ],
            measure_long(args.repeats, clock, figures),
        ),
        "accuracy": table(["float32, slow case", "v / tolerance", "i / tolerance"], measure_accuracy(figures)),
    }
    settings = {"repeats": args.repeats, "clock": args.clock, "dtype": "float32", "dt": DT, "numpy": np.__version__}
    for name, stored in tables.items():
        print(f"\n{name}\n" + "\n".join(" | ".join(row) for row in [stored["headers"], *stored["rows"]]))
    print("\nstored in", write_report("blocked", settings, figures, tables, args.json, backends=["numpy"]))


if __name__ == "__main__":
    main()
