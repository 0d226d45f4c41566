"""GPU speed of the fused kernels (the CuPy backend and torch on CUDA), each
next to copying the same array on the same device.

    python benchmarks/bench_gpu.py [--repeats 30] [--json PATH] [--blocks 32,64,128,256]

Workloads (float32, default parameters, state None):

1. forward, T=1000, batch 32, 1024 neurons: ``li_scan`` on CuPy and on torch
   (without autograd) against a device copy (``cupy.copy``, ``x.clone()``);
   target: at most 1.3x the copy;
2. forward, T=1000, batch 32, 32768 neurons (~1M neurons): the scan's
   bandwidth (input read once, voltages written once, as a copy does) as a
   fraction of the copy's; target: at least 80%;
3. training, T=500, batch 16, 4096 neurons on torch: forward and backward of
   ``li_scan(x)[0].sum()`` against ``x.clone()``; target: at most 3x; the
   fused path and torch's own loop on CUDA
   (``li_backends.torch.cuda.FUSED = False``) side by side.

``--blocks`` also times the CuPy forwards at other thread-block sizes
(``li_backends.cupy.kernels.BLOCK``, the only tuning knob outside the
kernel source). Each candidate is timed by CUDA events on the current stream
after a synchronised warm-up (which also compiles the kernels); candidates of
a workload run interleaved, round by round; figures are medians and ratios
are of medians. A library that cannot run is reported with its reason.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from li_core import li_scan

FORWARD = {"T=1000, batch 32, 1024 neurons": (1000, 32, 1024), "T=1000, batch 32, 32768 neurons": (1000, 32, 32768)}
TRAINING = (500, 16, 4096)
TARGETS = {"forward": 1.3, "bandwidth": 0.8, "training": 3.0}


def median_ms(candidates: dict[str, Callable[[], Any]], event: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of each candidate between two CUDA events made by
    ``event()`` (CuPy's or torch's) on the current stream, the candidates
    interleaved round by round after one warm-up each."""
    starts_stops = {name: (event(), event()) for name in candidates}
    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start, stop = starts_stops[name]
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times[name].append(_elapsed(start, stop))
    return {name: statistics.median(values) for name, values in times.items()}


def _elapsed(start: Any, stop: Any) -> float:
    if hasattr(start, "elapsed_time"):  # torch.cuda.Event
        return float(start.elapsed_time(stop))
    return float(sys.modules["cupy"].cuda.get_elapsed_time(start, stop))


def row(workload: str, library: str, candidate: str, ms: float, baseline: str, baseline_ms: float, **extra) -> dict:
    return {
        "workload": workload,
        "library": library,
        "candidate": candidate,
        "ms": ms,
        "baseline": baseline,
        "baseline_ms": baseline_ms,
        "ratio": ms / baseline_ms,
        **extra,
    }


def judged(entry: dict, kind: str) -> dict:
    """``entry`` with its target and whether it is met: ``forward`` and
    ``training`` bound the time ratio, ``bandwidth`` bounds the copy's time
    over the scan's (the scan's share of the copy's bandwidth)."""
    target = TARGETS[kind]
    if kind == "bandwidth":
        share = entry["baseline_ms"] / entry["ms"]
        return {**entry, "target": f">= {target:.0%} of copy bandwidth", "share": share, "met": share >= target}
    return {**entry, "target": f"<= {target}x {entry['baseline']}", "met": entry["ratio"] <= target}


def bench_cupy(repeats: int, blocks: list[int]) -> list[dict]:
    from li_core.registry import get_backend

    reason = get_backend("cupy").availability()
    if reason is not None:
        return [{"library": "cupy", "skipped": f"the cupy backend cannot run here: {reason}"}]
    import cupy

    from li_backends.cupy import kernels

    results = []
    default_block = kernels.BLOCK
    for (title, shape), kind in zip(FORWARD.items(), ("forward", "bandwidth")):
        xs = cupy.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        candidates = {"cupy.copy": lambda xs=xs: cupy.copy(xs), "li_scan": lambda xs=xs: li_scan(xs, backend="cupy")}
        for block in [default_block, *(b for b in blocks if b != default_block)]:
            kernels.BLOCK = block
            try:
                times = median_ms(candidates, cupy.cuda.Event, repeats)
            finally:
                kernels.BLOCK = default_block
            entry = row(f"forward {title}", "cupy", "li_scan", times["li_scan"], "cupy.copy", times["cupy.copy"])
            entry["block"] = block
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
    rng = np.random.default_rng(0)
    for (title, shape), kind in zip(FORWARD.items(), ("forward", "bandwidth")):
        x = torch.tensor(rng.normal(size=shape).astype(np.float32), device="cuda")

        def forward(x=x):
            with torch.no_grad():
                return li_scan(x, backend="torch")

        times = median_ms(
            {"x.clone()": x.clone, "li_scan": forward}, lambda: torch.cuda.Event(enable_timing=True), repeats
        )
        fused = torch_path(torch, cuda)
        entry = row(
            f"forward {title}", "torch", "li_scan", times["li_scan"], "x.clone()", times["x.clone()"], path=fused
        )
        results.append(judged(entry, kind))
        del x
        torch.cuda.empty_cache()

    x = torch.tensor(rng.normal(size=TRAINING).astype(np.float32), device="cuda", requires_grad=True)

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

    event = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
    times = median_ms({"x.clone()": lambda: x.detach().clone(), "fused": train, "loop": train_loop}, event, repeats)
    title = "training fwd+bwd T=500, batch 16, 4096 neurons"
    entry = row(title, "torch", "li_scan", times["fused"], "x.clone()", times["x.clone()"], path=fused)
    results.append(judged(entry, "training"))
    results.append(row(title, "torch", "torch loop on CUDA", times["loop"], "x.clone()", times["x.clone()"]))
    return results


def torch_path(torch: Any, cuda: Any) -> str:
    """Which path ``li_neurons::scan`` takes on CUDA tensors: "fused" when the
    op has a CUDA kernel and the bridge is active, else why not."""
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
            f"  {entry['library']:6s} {entry['workload']:42s} {entry['candidate']:20s}"
            f"{entry['ms']:9.3f} ms  {entry['ratio']:5.2f}x {entry['baseline']} ({entry['baseline_ms']:.3f} ms)"
        )
        if "block" in entry:
            text += f"  block {entry['block']}"
        if "share" in entry:
            text += f"  {entry['share']:.0%} of copy bandwidth"
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
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"device": device_name(), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
