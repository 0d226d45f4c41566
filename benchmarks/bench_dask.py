"""The dask backend on a ``dask.distributed.LocalCluster``, figures side by side.

    python benchmarks/bench_dask.py memory  [--repeats 7]
    python benchmarks/bench_dask.py time    [--repeats 5]
    python benchmarks/bench_dask.py zarr    [--store /tmp/li-bench-dask.zarr --steps 20000 --neurons 262144
                                             --chunk-steps 2000 --chunk-neurons 4096 --no-compress]

``memory``: ``li_scan`` T=1000, batch 32, 1024 neurons, float32, in 2 neuron
chunks on 2 worker processes (one thread each), against the ``numpy`` backend
in this process on the same numbers. The input is generated on the workers
and kept there, and so are the voltages (persisted and waited for): what is
timed is building the graph, scheduling it and the scan.

``time``: T=100,000, 4096 neurons, float32, in 16 time chunks (one neuron
chunk, so only the time axis runs in parallel), on 2 workers against 1 (both
clusters up, their runs alternating); the ``numpy`` backend in this process
for scale.

``zarr``: T=20,000 steps of 262,144 neurons (21 GB of float32 voltages), 100
Poisson inputs through random weights as in ``li demo``, streamed into a Zarr
store by 2 workers limited to 2 GiB each (Dask's default pause and terminate
thresholds). Reports the wall time, the throughput in GB/s of results, each
worker's peak memory (its process's maximum resident set) and whether any
worker was restarted, against the ``numpy`` backend's in-memory throughput
on a 4096-neuron slice of the same population. Deletes the store afterwards
unless ``--keep``.

Medians over repeats; the machine may be shared, so run each on a quiet
machine where possible and say so when it was not.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

from li_core import li_scan
from li_core.bench import measure

GIB = 2**30


def cluster(workers: int, memory_limit: int | str = "auto") -> LocalCluster:
    """Worker processes with one thread each on 127.0.0.1."""
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        memory_limit=memory_limit,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )


def persisted_once(client: Client, make: Callable[[], Any]) -> float:
    """Seconds of building ``make()``'s lazy voltages, computing them into
    worker memory and waiting for them. Afterwards (untimed) the results are
    released and the scheduler has forgotten them: the keys are the same
    every run, and results still held would be reused."""
    start = time.perf_counter()
    voltages = client.persist(make())
    wait(voltages)
    seconds = time.perf_counter() - start
    keys = set(dask.core.flatten(voltages.__dask_keys__()))
    del voltages
    while client.run_on_scheduler(lambda dask_scheduler, keys=keys: bool(keys & dask_scheduler.tasks.keys())):
        time.sleep(0.01)
    return seconds


def persisted_seconds(client: Client, make: Callable[[], Any], repeats: int) -> float:
    """Median of :func:`persisted_once` over ``repeats`` runs after one warm-up run."""
    persisted_once(client, make)
    return statistics.median(persisted_once(client, make) for _ in range(repeats))


def random_input(client: Client, shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[da.Array, np.ndarray]:
    """Standard-normal float32 numbers generated on the workers and kept
    there, and the same numbers in this process."""
    xs = client.persist(da.random.default_rng(0).standard_normal(shape, chunks=chunks, dtype=np.float32))
    wait(xs)
    return xs, client.compute(xs).result()


def in_memory(args: argparse.Namespace) -> None:
    with cluster(2) as local, Client(local) as client:
        xs, xs_np = random_input(client, (1000, 32, 1024), (1000, 32, 512))  # one neuron chunk per worker
        dask_s = persisted_seconds(client, lambda: li_scan(xs)[0], args.repeats)
    numpy_s = measure(lambda: li_scan(xs_np, backend="numpy"), repeats=args.repeats).median
    print("in memory: li_scan T=1000, batch 32, 1024 neurons, float32")
    print(f"  numpy backend, this process             {numpy_s * 1e3:8.1f} ms")
    print(f"  dask, 2 neuron chunks on 2 workers      {dask_s * 1e3:8.1f} ms   {dask_s / numpy_s:5.2f}x numpy")


def parallel_in_time(args: argparse.Namespace) -> None:
    steps, neurons, chunks = 100_000, 4096, 16
    with cluster(1) as one, cluster(2) as two, Client(one) as client_1, Client(two) as client_2:
        clients = {1: client_1, 2: client_2}
        inputs = {n: random_input(c, (steps, neurons), (steps // chunks, neurons))[0] for n, c in clients.items()}
        xs_np = client_1.compute(inputs[1]).result()
        runs: dict[int, list[float]] = {1: [], 2: []}
        for repeat in range(args.repeats + 1):  # alternating, so that a busy spell hits both; the first is a warm-up
            for workers, client in clients.items():
                seconds = persisted_once(client, lambda xs=inputs[workers]: li_scan(xs)[0])
                if repeat:
                    runs[workers].append(seconds)
    numpy_s = measure(lambda: li_scan(xs_np, backend="numpy"), repeats=args.repeats).median
    one_s, two_s = statistics.median(runs[1]), statistics.median(runs[2])
    print(f"parallel in time: li_scan T={steps:,}, {neurons} neurons, float32, {chunks} time chunks")
    print(f"  numpy backend, this process             {numpy_s:8.2f} s")
    print(
        f"  dask, 1 worker                          {one_s:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in runs[1])})"
    )
    print(
        f"  dask, 2 workers                         {two_s:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in runs[2])})"
    )
    print(f"  2 workers are {one_s / two_s:.2f}x faster than 1")


def peak_rss() -> int:
    """This process's maximum resident set, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def demo_inputs(
    steps: int, neurons: int, inputs: int, chunk_steps: int, chunk_neurons: int
) -> tuple[da.Array, da.Array]:
    """Poisson spikes at 20 Hz and normal(0.5, 1) weights, as ``li demo``
    draws them, generated block by block on the workers."""
    spikes = (da.random.default_rng(0).random((steps, inputs), chunks=(chunk_steps, inputs)) < 0.02).astype("float32")
    weights = da.random.default_rng(1).normal(0.5, 1.0, (neurons, inputs), chunks=(chunk_neurons, inputs))
    return spikes, weights.astype("float32")


def out_of_core(args: argparse.Namespace) -> None:
    limit = 2 * GIB
    spikes, weights = demo_inputs(args.steps, args.neurons, 100, args.chunk_steps, args.chunk_neurons)
    voltages, _ = li_scan(spikes, None, weights)
    gigabytes = voltages.nbytes / 1e9
    with cluster(2, memory_limit=limit) as local, Client(local) as client:
        pids = client.run(os.getpid)
        start = time.perf_counter()
        voltages.to_zarr(args.store, mode="w", **({} if args.compress else {"compressors": None}))
        seconds = time.perf_counter() - start
        peaks = client.run(peak_rss)
        restarted = client.run(os.getpid) != pids
        slice_spikes, slice_weights = dask.compute(spikes, weights[: args.slice])
    stored = da.from_zarr(args.store)
    numpy_s = measure(lambda: li_scan(slice_spikes, None, slice_weights, backend="numpy"), repeats=3).median
    want = li_scan(slice_spikes, None, slice_weights, backend="numpy")[0]
    got = np.asarray(stored[:, : args.slice])
    slice_gb = want.nbytes / 1e9
    print(f"out of core: li_scan T={args.steps:,}, {args.neurons:,} neurons, 100 inputs, float32 into Zarr")
    compression = "Zarr's default compressor" if args.compress else "uncompressed"
    print(f"  blocks of {args.chunk_steps} steps x {args.chunk_neurons} neurons, {compression}; 2 workers, 2 GiB each")
    print(f"  dask into {args.store}: {gigabytes:.1f} GB in {seconds:.1f} s = {gigabytes / seconds:.3f} GB/s")
    print(f"  peak worker memory: {', '.join(f'{p / GIB:.2f} GiB' for p in peaks.values())} (limit 2 GiB)")
    print(f"  workers restarted: {'yes' if restarted else 'no'}")
    print(f"  numpy backend in memory on [{args.steps}, {args.slice}]: {slice_gb:.2f} GB in {numpy_s:.2f} s")
    print(f"    = {slice_gb / numpy_s:.3f} GB/s; the stored slice differs by at most {np.abs(got - want).max():.3g}")
    if not args.keep:
        shutil.rmtree(args.store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["memory", "time", "zarr"])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 7 in memory, 5 in time)")
    parser.add_argument("--store", default="/tmp/li-bench-dask.zarr", help="Zarr store of the zarr benchmark")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--neurons", type=int, default=262_144)
    parser.add_argument("--chunk-steps", type=int, default=2000)
    parser.add_argument("--chunk-neurons", type=int, default=4096)
    parser.add_argument("--slice", type=int, default=4096, help="neurons of the numpy comparison")
    parser.add_argument("--keep", action="store_true", help="keep the Zarr store")
    parser.add_argument(
        "--no-compress", dest="compress", action="store_false", help="store uncompressed (default: Zarr's default)"
    )
    args = parser.parse_args()
    if args.which == "memory":
        args.repeats = args.repeats or 7
        in_memory(args)
    elif args.which == "time":
        args.repeats = args.repeats or 5
        parallel_in_time(args)
    else:
        out_of_core(args)


if __name__ == "__main__":
    main()
