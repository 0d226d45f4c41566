"""GPU speed of the fused kernels (the CuPy backend and torch on CUDA), each
next to copying the same array on the same device.

    python benchmarks/bench_gpu.py [--repeats 30] [--json PATH] [--blocks 32,64,128,256]

Workloads (float32, default parameters, state None):

1. forward, T=1000, batch 32, 1024 neurons: ``li_scan`` on CuPy and on torch
   (without autograd) against a device copy (a device-to-device memcpy into a
   new array for CuPy, ``x.clone()`` for torch); target: at most 1.3x the copy;
2. forward, T=1000, batch 32, 32768 neurons (~1M neurons): the scan's
   bandwidth (input read once, voltages written once, as a copy does) as a
   fraction of the copy's; target: at least 80%;
3. training, T=500, batch 16, 4096 neurons on torch: forward and backward of
   ``li_scan(x)[0].sum()`` against ``x.clone()``; target: at most 3x; the
   fused path and torch's own loop on CUDA
   (``li_backends.torch.cuda.FUSED = False``, a Python loop of a few small
   ops per step, the kind of code Norse's LI module runs) side by side;
   target: the fused path at least 50x faster than the loop.

Peers, where installed (``.ci/run`` does not install them), on the same
CUDA tensors at W2 (T=500, batch 16, 4096 neurons) and at a small layer
(T=100, batch 32, 512 neurons), forward scan and training step, each
against ``x.clone()``: Norse 1.1's ``LI`` module; SpikingJelly 2.0's fused
multi-step LIF (``spikingjelly.activation_based.functional.neuron.lif_multi_step``,
its own CUDA/Triton kernels with autograd) with a threshold that never fires,
a one-state neuron and so a lower bound on what a fused neuron kernel costs;
and SpikingJelly's ``CUBALIFNode`` (our model's class, which has no fused
form: it iterates ``cuba_lif_step``), the loop anchor. A peer that is not
installed or fails is a ``skipped`` row with the reason.

CUDA graphs: the W2 training step eager and through
``torch.cuda.make_graphed_callables`` (forward and backward captured),
wall clock and device time.

Three figures per candidate, medians of ``--repeats`` runs:

- ``ms``, the wall clock: CUDA events around the call on an idle device, so
  a call whose host side is slower than its kernels is timed by its host
  side. The targets judge this figure.
- ``device_ms``, the device alone: the same events with the device kept
  busy (``torch.cuda._sleep``) until the host has issued the whole call, so
  that the kernels run back to back (needs torch with CUDA; else None).
- ``host_ms``: the host's time in the call, on an idle device
  (``time.perf_counter``, nothing waited for).

``--blocks`` also times the CuPy forwards at other thread-block sizes
(``li_backends.cupy.kernels.BLOCK``, the only tuning knob outside the
kernel source). Candidates of a workload run interleaved, round by round,
after a synchronised warm-up (which also compiles the kernels); ratios are of
medians. A library that cannot run is reported with its reason.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from li_core import li_scan

FORWARD = {"T=1000, batch 32, 1024 neurons": (1000, 32, 1024), "T=1000, batch 32, 32768 neurons": (1000, 32, 32768)}
TRAINING = (500, 16, 4096)
TARGETS = {"forward": 1.3, "bandwidth": 0.8, "training": 3.0, "speedup": 50.0}


def median_ms(candidates: dict[str, Callable[[], Any]], event: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of each candidate between two CUDA events made by
    ``event()`` (CuPy's or torch's) on the current stream, the candidates
    interleaved round by round after one warm-up each."""
    return _timed(candidates, event, repeats, busy=None)


def _timed(
    candidates: dict[str, Callable[[], Any]], event: Callable[[], Any], repeats: int, busy: Callable[[], Any] | None
) -> dict[str, float]:
    """:func:`median_ms`, with ``busy()`` (work for the device that outlasts
    the host's issuing of a call) queued before each start event where given."""
    starts_stops = {name: (event(), event()) for name in candidates}
    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start, stop = starts_stops[name]
            if busy is not None:
                busy()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times[name].append(_elapsed(start, stop))
    return {name: statistics.median(values) for name, values in times.items()}


def host_ms(candidates: dict[str, Callable[[], Any]], synchronize: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median milliseconds that the host spends in each candidate, started on
    an idle device and not waiting for it."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            synchronize()
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    synchronize()
    return {name: statistics.median(values) for name, values in times.items()}


def device_ms(
    candidates: dict[str, Callable[[], Any]], event: Callable[[], Any], repeats: int, hosts: dict[str, float]
) -> dict[str, float | None]:
    """Median milliseconds of each candidate on the device alone: CUDA events
    around the call with the device first kept busy (``torch.cuda._sleep``)
    for longer than the host takes to issue the call (``hosts``, ms), so the
    start event is reached only once every kernel of the call is queued. None
    for each where torch cannot keep the device busy."""
    try:
        import torch

        if not torch.cuda.is_available():
            return dict.fromkeys(candidates)
    except ImportError:
        return dict.fromkeys(candidates)
    ms_per_cycle = _sleep_ms_per_cycle(torch)
    found: dict[str, float | None] = {}
    for name, fn in candidates.items():
        cycles = int((3.0 * hosts[name] + 0.5) / ms_per_cycle)
        found[name] = _timed({name: fn}, event, repeats, busy=lambda cycles=cycles: torch.cuda._sleep(cycles))[name]
    return found


def _sleep_ms_per_cycle(torch: Any) -> float:
    """Milliseconds per cycle of ``torch.cuda._sleep`` on the current device."""
    cycles = 10_000_000
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(cycles)  # warm-up
    start.record()
    torch.cuda._sleep(cycles)
    stop.record()
    stop.synchronize()
    return float(start.elapsed_time(stop)) / cycles


def measure(
    candidates: dict[str, Callable[[], Any]], event: Callable[[], Any], synchronize: Callable[[], Any], repeats: int
) -> dict[str, dict[str, float | None]]:
    """The three figures of each candidate: ``ms`` (wall clock, events on an
    idle device), ``host_ms`` and ``device_ms``."""
    walls = median_ms(candidates, event, repeats)
    hosts = host_ms(candidates, synchronize, repeats)
    devices = device_ms(candidates, event, repeats, hosts)
    return {name: {"ms": walls[name], "host_ms": hosts[name], "device_ms": devices[name]} for name in candidates}


def _elapsed(start: Any, stop: Any) -> float:
    if hasattr(start, "elapsed_time"):  # torch.cuda.Event
        return float(start.elapsed_time(stop))
    return float(sys.modules["cupy"].cuda.get_elapsed_time(start, stop))


def row(
    workload: str, library: str, candidate: str, ms: float, baseline: str, baseline_ms: float, **extra: Any
) -> dict:
    """One result: ``ms`` against ``baseline_ms``; ``extra`` may carry
    ``host_ms``, ``device_ms`` and ``baseline_device_ms`` (then the ratio of
    the device times is ``device_ratio``)."""
    entry = {
        "workload": workload,
        "library": library,
        "candidate": candidate,
        "ms": ms,
        "baseline": baseline,
        "baseline_ms": baseline_ms,
        "ratio": ms / baseline_ms,
        **extra,
    }
    if entry.get("device_ms") is not None and entry.get("baseline_device_ms") is not None:
        entry["device_ratio"] = entry["device_ms"] / entry["baseline_device_ms"]
    return entry


def measured_row(
    workload: str, library: str, candidate: str, figures: dict, baseline: str, baseline_figures: dict, **extra: Any
) -> dict:
    """:func:`row` from the figures of :func:`measure`."""
    return row(
        workload, library, candidate, figures["ms"], baseline, baseline_figures["ms"], host_ms=figures["host_ms"],
        device_ms=figures["device_ms"], baseline_device_ms=baseline_figures["device_ms"], **extra,
    )  # fmt: skip


def judged(entry: dict, kind: str) -> dict:
    """``entry`` with its target and whether its wall clock meets it:
    ``forward`` and ``training`` bound the time ratio, ``bandwidth`` bounds
    the copy's time over the scan's (the scan's share of the copy's
    bandwidth), ``speedup`` bounds the baseline's time over the candidate's
    from below. Where the device times are known, ``device_met`` says
    whether the device alone would meet it."""
    target = TARGETS[kind]
    device = entry.get("device_ratio")
    if kind == "bandwidth":
        share = entry["baseline_ms"] / entry["ms"]
        judged_entry = {**entry, "target": f">= {target:.0%} of copy bandwidth", "share": share, "met": share >= target}
        if device is not None:
            judged_entry.update(device_share=1.0 / device, device_met=1.0 / device >= target)
        return judged_entry
    if kind == "speedup":
        speedup = entry["baseline_ms"] / entry["ms"]
        return {**entry, "target": f">= {target:.0f}x faster than {entry['baseline']}", "speedup": speedup,
                "met": speedup >= target}  # fmt: skip
    judged_entry = {**entry, "target": f"<= {target}x {entry['baseline']}", "met": entry["ratio"] <= target}
    if device is not None:
        judged_entry["device_met"] = device <= target
    return judged_entry


def bench_cupy(repeats: int, blocks: list[int]) -> list[dict]:
    from li_core.registry import get_backend

    reason = get_backend("cupy").availability()
    if reason is not None:
        return [{"library": "cupy", "skipped": f"the cupy backend cannot run here: {reason}"}]
    import cupy

    from li_backends.cupy import kernels

    def device_copy(xs: Any) -> Any:
        copy = cupy.empty_like(xs)
        copy.data.copy_from_device_async(xs.data, xs.nbytes)
        return copy

    results = []
    default_block = kernels.BLOCK
    synchronize = cupy.cuda.runtime.deviceSynchronize
    for (title, shape), kind in zip(FORWARD.items(), ("forward", "bandwidth")):
        xs = cupy.random.default_rng(0).standard_normal(shape, dtype=cupy.float32)  # (made on the device: fast)
        candidates = {"copy": lambda xs=xs: device_copy(xs), "li_scan": lambda xs=xs: li_scan(xs, backend="cupy")}
        for block in [default_block, *(b for b in blocks if b != default_block)]:
            kernels.BLOCK = block
            try:
                figures = measure(candidates, cupy.cuda.Event, synchronize, repeats)
            finally:
                kernels.BLOCK = default_block
            entry = measured_row(
                f"forward {title}", "cupy", "li_scan", figures["li_scan"], "device memcpy", figures["copy"], block=block
            )
            results.append(judged(entry, kind) if block == default_block else entry)
        del xs, candidates
        cupy.get_default_memory_pool().free_all_blocks()
    return results


def bench_torch(repeats: int) -> list[dict]:
    try:
        import torch
    except ImportError as exc:
        return [{"library": "torch", "skipped": f"torch is not importable: {exc}"}]
    if not torch.cuda.is_available():
        return [{"library": "torch", "skipped": "no CUDA device: torch.cuda.is_available() is False"}]
    from li_backends.torch import cuda

    results = []
    generator = torch.Generator(device="cuda").manual_seed(0)
    event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    fused = torch_path(torch, cuda)
    for (title, shape), kind in zip(FORWARD.items(), ("forward", "bandwidth")):
        x = torch.randn(shape, generator=generator, device="cuda")

        def forward(x=x):
            with torch.no_grad():
                return li_scan(x, backend="torch")

        figures = measure({"x.clone()": x.clone, "li_scan": forward}, event, torch.cuda.synchronize, repeats)
        entry = measured_row(
            f"forward {title}", "torch", "li_scan", figures["li_scan"], "x.clone()", figures["x.clone()"], path=fused
        )
        results.append(judged(entry, kind))
        del x
        torch.cuda.empty_cache()

    x = torch.randn(TRAINING, generator=generator, device="cuda").requires_grad_()

    def train():
        li_scan(x, backend="torch")[0].sum().backward()
        x.grad = None

    def train_loop():
        saved = cuda.FUSED
        cuda.FUSED = False
        try:
            train()
        finally:
            cuda.FUSED = saved

    candidates = {"x.clone()": lambda: x.detach().clone(), "fused": train, "loop": train_loop}
    figures = measure(candidates, event, torch.cuda.synchronize, repeats)
    title = "training fwd+bwd T=500, batch 16, 4096 neurons"
    clone = figures["x.clone()"]
    results.append(judged(measured_row(title, "torch", "li_scan", figures["fused"], "x.clone()", clone, path=fused),
                          "training"))  # fmt: skip
    results.append(measured_row(title, "torch", "torch loop on CUDA", figures["loop"], "x.clone()", clone))
    speedup = measured_row(title, "torch", "li_scan", figures["fused"], "torch loop on CUDA", figures["loop"])
    results.append(judged({**speedup, "path": fused}, "speedup"))
    return results


#: the peers' shapes: W2 and a small layer
PEER_SHAPES = {
    "W2 T=500, batch 16, 4096 neurons": (500, 16, 4096),
    "small T=100, batch 32, 512 neurons": (100, 32, 512),
}


def peer_modules(torch: Any, device: str = "cuda") -> tuple[dict[str, Callable[[Any], Any]], list[dict]]:
    """The peers' forward functions ``x [T, B, N] -> voltages [T, B, N]`` on
    ``device`` that can run here, and a ``skipped`` row for each that cannot."""
    from li_core import LIParameters

    found: dict[str, Callable[[Any], Any]] = {}
    skipped = []
    p = LIParameters()
    try:
        from norse.torch import LI
        from norse.torch import LIParameters as NorseParameters

        norse = LI(p=NorseParameters(*(torch.tensor(v, device=device) for v in p)), dt=1e-3)
        found["norse LI"] = lambda x: norse(x)[0]
    except Exception as exc:  # noqa: BLE001 - reported as a skipped row
        skipped.append({"library": "norse", "skipped": f"{type(exc).__name__}: {exc}"})
    try:
        from spikingjelly.activation_based.functional import neuron as sj_functional  # type: ignore[import-untyped]

        fused = sj_functional.lif_multi_step
        tau = 1.0 / (1e-3 * p.tau_mem_inv)  # the same membrane decay per step; never fires

        def sj_fused(x: Any) -> Any:
            v0 = torch.zeros_like(x[0])
            return fused(x, v0, tau, decay_input=True, v_threshold=float("inf"), v_reset=0.0, store_v_seq=True)[2]

        found["spikingjelly lif_multi_step"] = sj_fused
    except Exception as exc:  # noqa: BLE001 - reported as a skipped row
        skipped.append({"library": "spikingjelly", "skipped": f"fused lif_multi_step: {type(exc).__name__}: {exc}"})
    try:
        from spikingjelly.activation_based import functional as sj_tools  # type: ignore[import-untyped]
        from spikingjelly.activation_based.neuron import CUBALIFNode  # type: ignore[import-untyped]

        cuba = CUBALIFNode(c_decay=1e-3 * p.tau_syn_inv, v_decay=1e-3 * p.tau_mem_inv, v_threshold=float("inf"))

        def sj_cuba(x: Any) -> Any:
            sj_tools.reset_net(cuba)
            voltages = []
            for x_t in x:  # one cuba_lif_step per time step: it has no fused form
                cuba(x_t)
                voltages.append(cuba.v)
            return torch.stack(voltages)

        found["spikingjelly CUBALIFNode"] = sj_cuba
    except Exception as exc:  # noqa: BLE001 - reported as a skipped row
        skipped.append({"library": "spikingjelly", "skipped": f"CUBALIFNode: {type(exc).__name__}: {exc}"})
    return found, skipped


def bench_peers(repeats: int) -> list[dict]:
    """``li_scan`` and the peers on the same CUDA tensors, forward and
    training, against ``x.clone()`` (see the module docstring)."""
    try:
        import torch
    except ImportError as exc:
        return [{"library": "torch", "skipped": f"torch is not importable: {exc}"}]
    if not torch.cuda.is_available():
        return [{"library": "peers", "skipped": "no CUDA device: torch.cuda.is_available() is False"}]
    peers, results = peer_modules(torch)
    generator = torch.Generator(device="cuda").manual_seed(1)
    for title, shape in PEER_SHAPES.items():
        results += _peer_rows(torch, title, torch.randn(shape, generator=generator, device="cuda"), peers, repeats)
        torch.cuda.empty_cache()
    return results


def _peer_rows(torch: Any, title: str, x: Any, peers: dict[str, Callable[[Any], Any]], repeats: int) -> list[dict]:
    """The forward and training rows of ``li_scan`` and the peers on ``x``."""
    event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731 - a one-line factory, read where it is used
    leaf = x.detach().requires_grad_()
    forwards = {"li_scan": lambda a: li_scan(a, backend="torch")[0], **peers}

    def inference(f: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return f(x)

        return run

    def training(f: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            leaf.grad = None
            f(leaf).sum().backward()

        return run

    results = []
    for mode, make in (("forward", inference), ("training", training)):
        candidates = {"x.clone()": x.clone, **{name: make(f) for name, f in forwards.items()}}
        try:
            figures = measure(candidates, event, torch.cuda.synchronize, repeats)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is reported, never fatal
            results.append({"library": "peers", "skipped": f"{mode} {title}: {type(exc).__name__}: {exc}"})
            continue
        clone = figures["x.clone()"]
        results += [measured_row(f"peers {mode} {title}", "torch", n, figures[n], "x.clone()", clone) for n in forwards]
    return results


def bench_graphs(repeats: int) -> list[dict]:
    """The W2 training step eager and captured by
    ``torch.cuda.make_graphed_callables``, against ``x.clone()``."""
    try:
        import torch
    except ImportError as exc:
        return [{"library": "torch", "skipped": f"torch is not importable: {exc}"}]
    if not torch.cuda.is_available():
        return [{"library": "graphs", "skipped": "no CUDA device: torch.cuda.is_available() is False"}]
    x = torch.randn(TRAINING, device="cuda", requires_grad=True)
    event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731 - a one-line factory, read where it is used

    def scan(a: Any) -> Any:
        return li_scan(a, backend="torch")[0]

    try:
        graphed = torch.cuda.make_graphed_callables(scan, (x,))
    except Exception as exc:  # noqa: BLE001 - reported: the capture itself is what is checked
        return [{"library": "graphs", "skipped": f"make_graphed_callables failed: {type(exc).__name__}: {exc}"}]

    def step(f: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            x.grad = None
            f(x).sum().backward()

        return run

    candidates = {"x.clone()": lambda: x.detach().clone(), "eager": step(scan), "graphed": step(graphed)}
    figures = measure(candidates, event, torch.cuda.synchronize, repeats)
    title = "CUDA graph training fwd+bwd T=500, batch 16, 4096 neurons"
    clone = figures["x.clone()"]
    results = [measured_row(title, "torch", name, figures[name], "x.clone()", clone) for name in ("eager", "graphed")]
    graphed_figures = figures["graphed"]
    wall, device = graphed_figures["ms"], graphed_figures["device_ms"]
    if wall is not None and device is not None:
        own = row(title, "torch", "graphed", wall, "its own device time", device)
        results.append({**own, "target": "<= 1.2x its own device time", "met": own["ratio"] <= 1.2})
    return results


def torch_path(torch: Any, cuda: Any) -> str:
    """Which path ``li_neurons::scan`` takes on CUDA tensors: "fused" when the
    op has a CUDA kernel and the bridge is active, else why not."""
    from li_backends.torch import _scan_op

    _scan_op()  # the ops are registered on first use
    try:
        registered = torch._C._dispatch_has_kernel_for_dispatch_key("li_neurons::scan", "CUDA")
    except Exception as exc:  # noqa: BLE001 - a private API: report, do not fail
        return f"unknown path ({type(exc).__name__}: {exc})"
    if not registered:
        return "torch loop: li_neurons::scan has no CUDA kernel registered"
    if not cuda.active():
        return f"torch loop: the fused kernels cannot run ({cuda.fused_unavailable() or 'FUSED is False'})"
    return "fused"


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:
        pass
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    except Exception as exc:  # noqa: BLE001 - the name is informational
        return f"unknown device ({type(exc).__name__})"


def format_results(results: list[dict]) -> str:
    lines = []
    for entry in results:
        if "skipped" in entry:
            lines.append(f"  {entry['library']:6s} skipped: {entry['skipped']}")
            continue
        text = (
            f"  {entry['library']:6s} {entry['workload']:47s} {entry['candidate']:19s}"
            f"{entry['ms']:9.3f} ms  {entry['ratio']:6.2f}x {entry['baseline']} ({entry['baseline_ms']:.3f} ms)"
        )
        if entry.get("device_ms") is not None:
            text += f"  device {entry['device_ms']:.3f} ms"
            if entry.get("device_ratio") is not None:
                text += f" ({entry['device_ratio']:.2f}x)"
        if entry.get("host_ms") is not None:
            text += f"  host {entry['host_ms']:.3f} ms"
        if "block" in entry:
            text += f"  block {entry['block']}"
        if "share" in entry:
            text += f"  {entry['share']:.0%} of copy bandwidth"
        if "speedup" in entry:
            text += f"  {entry['speedup']:.1f}x faster"
        if "met" in entry:
            text += f"  target {entry['target']}: {'met' if entry['met'] else 'MISSED'}"
        if entry.get("path", "fused") != "fused":
            text += f"  [{entry['path']}]"
        lines.append(text)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--blocks",
        type=lambda text: [int(b) for b in text.split(",") if b],
        default=[],
        metavar="B,...",
        help="also time the CuPy forwards with these thread-block sizes",
    )
    args = parser.parse_args(argv)
    print(f"li_scan on {device_name()}, float32, medians of {args.repeats} runs")
    results = bench_cupy(args.repeats, args.blocks) + bench_torch(args.repeats)
    results += bench_peers(args.repeats) + bench_graphs(args.repeats)
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"device": device_name(), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
