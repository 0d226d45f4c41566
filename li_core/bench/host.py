"""The host-overhead workload: microseconds per call of ``li_scan`` and
friends, each side by side with its floor, measured in the same run.

Two tables. The grid: ``li_scan`` forward and training (forward and
backward of the sum with respect to the input, and on torch also with
respect to three per-neuron parameter tensors) over sequence lengths ``T``
and neuron counts ``N``, beside the floor of any fused op written in
Python: one elementwise op each way, for torch one
``torch.autograd.Function`` whose forward is ``2*x`` and whose backward is
``2*g``; for other libraries ``2*x`` through the array namespace (and its
gradient by the library's autograd, where the harness has a recipe).

The goal rows (:data:`GOAL_HEADERS`): calls whose cost beside their floor
has a goal, each stated with the row and whether it is met. On torch, at
``T=4, B=2, N=8`` (:data:`TINY`): the tiny ``li_scan`` forward, its training
with parameter gradients, and a training step of each ``torch_nn`` module
(goal :data:`TORCH_GOAL` times the floor). On NumPy:
``li_feed_forward_step`` on ``[8, 256]`` beside the hand-written step of
:mod:`li_core.bench.raw_step` (goal :data:`STEP_GOAL`), and the first call
in a fresh process beside the same with ``LI_NUMBA=0``
(:mod:`li_core.bench.first_call`, goal :data:`FIRST_CALL_GOAL_S` more).

Each group of candidates is timed in interleaved rounds, each round a batch
of calls ended by one device synchronisation, so a noisy neighbour slows
all alike; a figure is the median over rounds of the time per call, and a
ratio is the quotient of medians.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..api import li_feed_forward_step, li_scan
from ..arrays import library_name, namespace
from ..types import LIParameters, LIState
from . import first_call
from .raw_step import raw_step
from .timing import gradient, no_sync, synchronizer
from .workloads import DT, PARAMETERS, Workload

#: a round of calls lasts at least this long (seconds)
ROUND_SECONDS = 2e-3
#: ``(T, B, N)`` of the torch goal rows
TINY = (4, 2, 8)
#: the input shape of the NumPy step row
STEP_SHAPE = (8, 256)
#: the goals: torch rows at most this many times their floor, the NumPy step
#: at most this many times the raw step, the first call at most this many
#: seconds more than with ``LI_NUMBA=0``
TORCH_GOAL = 3.0
STEP_GOAL = 1.25
FIRST_CALL_GOAL_S = 0.3
#: the goal rows' interleaved groups run at least this many rounds (they are
#: cheap, and a goal is judged on their medians)
GOAL_ROUNDS = 15


def floor(x: Any) -> Callable[[Any], Any]:
    """The Python-level floor for arrays like ``x``: one elementwise op (and,
    for torch, one ``autograd.Function`` with one op back)."""
    if library_name(x) == "torch":
        return _torch_floor().apply
    xp = namespace(x)
    return lambda a: xp.multiply(a, 2.0)


def _torch_floor() -> Any:
    function: Any = sys.modules["torch"].autograd.Function

    class Floor(function):
        @staticmethod
        def forward(ctx: Any, a: Any) -> Any:
            return a * 2.0

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2.0

    return Floor


def interleaved(candidates: dict[str, Callable[[], Any]], sync: Callable[[Any], None], rounds: int) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in interleaved rounds
    after one warm-up call each; a round is as many calls as last about
    :data:`ROUND_SECONDS` (the calibration is the warm-up)."""
    calls = {}
    for name, fn in candidates.items():
        fn()
        start = time.perf_counter()
        sync(fn())
        calls[name] = max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls[name] - 1):
                fn()
            sync(fn())
            times[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in times.items()}


def trained(forward: Callable[[], Any], leaves: Sequence[Any]) -> Callable[[], Any]:
    """A torch training call as a function of nothing: the gradients of
    ``leaves`` reset to None (as ``zero_grad()`` does), then forward and
    backward of ``forward().sum()``; returns the first leaf's gradient."""

    def train() -> Any:
        for leaf in leaves:
            leaf.grad = None
        forward().sum().backward()
        return leaves[0].grad

    return train


def parameter_tensors(x: Any, neurons: int) -> LIParameters:
    """The default parameters as three ``[neurons]`` tensors like ``x`` that
    require grad."""
    torch = sys.modules["torch"]
    return LIParameters(
        *(torch.full((neurons,), float(value), dtype=x.dtype, device=x.device).requires_grad_() for value in PARAMETERS)
    )


def _voltages(module: Any, x: Any) -> Any:
    """A module's voltages on ``x`` (its first output)."""
    return module(x)[0]


def _parameter_training(backend: Any, x: Any) -> Callable[[], Any]:
    """Training of ``li_scan`` on ``x`` with respect to the input and the
    three parameter tensors."""
    leaf = x.detach().requires_grad_(True)
    p = parameter_tensors(x, x.shape[-1])
    return trained(lambda: li_scan(leaf, None, None, p, DT, backend=backend)[0], [leaf, *p])


def time_host(backend: Any, device: Any, workload: Workload, dtype: str, repeats: int, seed: int) -> dict[str, Any]:
    """The fields of one host row: ``host``, per grid cell, ``li_scan``'s and
    the floor's microseconds per forward call (and per training call where
    the library has a gradient recipe, with ``params_training_us`` on torch)
    and their ratios; ``host_goals``, the goal rows of this backend
    (:func:`goal_row`)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cells = []
    for steps, neurons in workload.grid():
        x = backend.asarray(rng.standard_normal((steps, workload.batch, neurons)).astype(dtype), device=device)
        library, sync = library_name(x), synchronizer(x)
        base = floor(x)

        def scan(a: Any) -> Any:
            return li_scan(a, None, None, PARAMETERS, DT, backend=backend)[0]

        cell: dict[str, Any] = {"steps": steps, "neurons": neurons}
        forward = interleaved(
            {"li_scan": functools.partial(scan, x), "floor": functools.partial(base, x)}, sync, repeats
        )
        cell.update(forward_us=forward["li_scan"] * 1e6, floor_forward_us=forward["floor"] * 1e6)
        cell["forward_ratio"] = forward["li_scan"] / forward["floor"]
        train, train_floor = gradient(library, scan, x), gradient(library, base, x)
        if backend.autograd and train is not None and train_floor is not None:
            candidates = {"li_scan": train, "floor": train_floor}
            if library == "torch":
                candidates["params"] = _parameter_training(backend, x)
            training = interleaved(candidates, sync, repeats)
            cell.update(training_us=training["li_scan"] * 1e6, floor_training_us=training["floor"] * 1e6)
            cell["training_ratio"] = training["li_scan"] / training["floor"]
            if "params" in training:
                cell["params_training_us"] = training["params"] * 1e6
                cell["params_training_ratio"] = training["params"] / training["floor"]
        cells.append(cell)
    rounds = max(repeats, GOAL_ROUNDS)
    goals = _torch_goals(backend, device, dtype, rounds, rng)
    if backend.name == "numpy":
        goals += _numpy_goals(dtype, rounds, rng, workload.first_calls or repeats)
    return {"status": "ok", "host": cells, "host_goals": goals}


def goal_row(
    call: str, shape: str, beside: str, time_s: float, floor_s: float, goal_on: str, goal: float, repeats: int
) -> dict[str, Any]:
    """One goal row: ``call`` on ``shape`` took ``time_s`` (a median of
    ``repeats`` timings) where its floor, ``beside``, took ``floor_s``;
    ``ratio`` and ``difference_s`` compare the two, and ``met`` says whether
    the one named by ``goal_on`` is at most ``goal``."""
    if goal_on not in ("ratio", "difference_s"):
        raise ValueError(f"goal_on must be 'ratio' or 'difference_s', got {goal_on!r}")
    row: dict[str, Any] = {"call": call, "shape": shape, "beside": beside, "time_s": time_s, "floor_s": floor_s}
    row.update(ratio=time_s / floor_s, difference_s=time_s - floor_s, goal_on=goal_on, goal=goal, repeats=repeats)
    row["met"] = row[goal_on] <= goal
    return row


def _torch_goals(backend: Any, device: Any, dtype: str, rounds: int, rng: Any) -> list[dict[str, Any]]:
    """The tiny rows of a backend of torch tensors (none for others), all
    timed in one interleaved group: ``li_scan`` forward beside the forward
    floor; with autograd its training with parameter gradients and (on the
    ``torch`` backend) a training step of ``LI``, ``LICell`` and
    ``LILinearCell`` with trainable time constants, beside the training
    floor on the same input."""
    steps, batch, neurons = TINY
    x = backend.asarray(rng.standard_normal(TINY).astype(dtype), device=device)
    if library_name(x) != "torch":
        return []
    base = floor(x)
    scan = f"T={steps} B={batch} N={neurons}"
    cell = f"B={batch} N={neurons}"
    candidates: dict[str, Callable[[], Any]] = {
        "li_scan forward": lambda: li_scan(x, None, None, PARAMETERS, DT, backend=backend)[0],
        "forward floor": functools.partial(base, x),
    }
    # (call, shape, floor): each floor runs on the call's input ("training
    # floor, one step" on the cells' [B, N]; the table names it "training floor")
    rows = [("li_scan forward", scan, "forward floor")]
    if backend.autograd:
        sequence, step = (a.detach().requires_grad_(True) for a in (x, x[0]))
        candidates["training floor"] = trained(functools.partial(base, sequence), [sequence])
        candidates["training floor, one step"] = trained(functools.partial(base, step), [step])
        candidates["li_scan training, parameter grads"] = _parameter_training(backend, x)
        rows.append(("li_scan training, parameter grads", scan, "training floor"))
        if backend.name == "torch":
            for name, (module, leaf) in modules(sequence, step).items():
                candidates[name] = trained(functools.partial(_voltages, module, leaf), [leaf, *module.parameters()])
            rows += [
                ("LI training step", scan, "training floor"),
                ("LICell training step", cell, "training floor, one step"),
                ("LILinearCell training step", cell, "training floor, one step"),
            ]
    medians = interleaved(candidates, synchronizer(x), rounds)
    return [
        goal_row(call, shape, beside.split(",")[0], medians[call], medians[beside], "ratio", TORCH_GOAL, rounds)
        for call, shape, beside in rows
    ]


def modules(x: Any, step: Any) -> dict[str, tuple[Any, Any]]:
    """The module rows' ``li_backends.torch_nn`` modules with trainable
    per-neuron time constants, each with its input: ``LI`` with ``x``
    ``[T, B, N]``, the cells with ``step`` ``[B, N]``."""
    from li_backends.torch_nn import LI, LICell, LILinearCell

    neurons = x.shape[-1]
    built = {
        "LI training step": (LI(train_time_constants=True, size=neurons), x),
        "LICell training step": (LICell(train_time_constants=True, size=neurons), step),
        "LILinearCell training step": (LILinearCell(neurons, neurons, train_time_constants=True), step),
    }
    return {name: (module.to(device=x.device, dtype=x.dtype), leaf) for name, (module, leaf) in built.items()}


def _numpy_goals(dtype: str, rounds: int, rng: Any, fresh: int) -> list[dict[str, Any]]:
    """The NumPy rows: ``li_feed_forward_step`` on :data:`STEP_SHAPE` beside
    :func:`~li_core.bench.raw_step.raw_step` (interleaved), and the first
    call beside the same with ``LI_NUMBA=0`` over ``fresh`` pairs of fresh
    processes (``repeats``: rounds, or pairs)."""
    x, v, i = (rng.standard_normal(STEP_SHAPE).astype(dtype) for _ in range(3))
    state, p = LIState(v, i), PARAMETERS
    medians = interleaved(
        {
            "step": functools.partial(li_feed_forward_step, x, state, p, DT, backend="numpy"),
            "raw": functools.partial(raw_step, x, state, DT * p.tau_mem_inv, DT * p.tau_syn_inv, p.v_leak),
        },
        no_sync,
        rounds,
    )
    shape = f"[{', '.join(map(str, STEP_SHAPE))}]"
    step = goal_row(
        "li_feed_forward_step", shape, "raw step", medians["step"], medians["raw"], "ratio", STEP_GOAL, rounds
    )
    first = first_call.measure(fresh)
    steps, batch, neurons = first_call.SHAPE
    call = goal_row(
        "first call: import li_core + scan",
        f"T={steps} B={batch} N={neurons}",
        "LI_NUMBA=0",
        first["default_s"],
        first["no_numba_s"],
        "difference_s",
        FIRST_CALL_GOAL_S,
        fresh,
    )
    return [step, call]


#: the columns of :func:`host_table`
HOST_HEADERS = [
    "backend", "device", "T", "N", "forward", "floor", "x floor", "training", "floor", "x floor",
    "+ params", "x floor",
]  # fmt: skip


def host_table(report: dict[str, Any]) -> list[list[str]]:
    """The host-overhead grid of a :func:`li_core.bench.run` report, as
    text under :data:`HOST_HEADERS` (``+ params``: training with parameter
    gradients too)."""

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} us"

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    table = []
    for row in report["results"]:
        for cell in row.get("host", ()):
            table.append(
                [
                    row["backend"],
                    row["device"],
                    str(cell["steps"]),
                    str(cell["neurons"]),
                    us(cell["forward_us"]),
                    us(cell["floor_forward_us"]),
                    ratio(cell["forward_ratio"]),
                    us(cell.get("training_us")),
                    us(cell.get("floor_training_us")),
                    ratio(cell.get("training_ratio")),
                    us(cell.get("params_training_us")),
                    ratio(cell.get("params_training_ratio")),
                ]
            )
    return table


#: the columns of :func:`goal_table`
GOAL_HEADERS = [
    "backend", "device", "call", "shape", "time", "beside", "its time", "ratio", "difference", "goal", "met",
]  # fmt: skip


def _duration(seconds: float, sign: str = "") -> str:
    """Microseconds below a tenth of a second, else seconds."""
    if abs(seconds) < 0.1:
        return f"{seconds * 1e6:{sign}.1f} us"
    return f"{seconds:{sign}.3f} s"


def goal_table(report: dict[str, Any]) -> list[list[str]]:
    """The goal rows of a :func:`li_core.bench.run` report, as text under
    :data:`GOAL_HEADERS`."""
    table = []
    for row in report["results"]:
        for goal in row.get("host_goals", ()):
            wanted = f"<= {goal['goal']:g}x" if goal["goal_on"] == "ratio" else f"<= +{goal['goal']:g} s"
            table.append(
                [
                    row["backend"],
                    row["device"],
                    goal["call"],
                    goal["shape"],
                    _duration(goal["time_s"]),
                    goal["beside"],
                    _duration(goal["floor_s"]),
                    f"{goal['ratio']:.2f}x",
                    _duration(goal["difference_s"], "+"),
                    wanted,
                    "yes" if goal["met"] else "no",
                ]
            )
    return table
