"""The ``dask`` backend: leaky integrators on chunked, lazy Dask arrays.

Every call builds a Dask graph and returns lazy Dask arrays; nothing is
computed until the caller asks (``.compute()``, ``dask.compute``,
``.to_zarr``, ``.persist``). The state, weights and parameters may be NumPy
arrays (or arrays of the input's block library) beside the Dask input: this
backend declares them as companions (:meth:`DaskBackend.companions`), as the
contract (docs/contract.md), section 2 allows for chunked libraries.

**Parallel over neurons.** Each block is computed by the backend that
li_core's own selection (``LI_BACKEND``, then priorities) chooses for the
block type, when the graph is built: NumPy blocks get ``numpy``, CuPy blocks
``cupy``, and a preferred third-party backend for NumPy arrays is used. An
enclosing ``use_backend`` chose this backend for the Dask array and does not
apply to its blocks. With weights, all steps are projected by one Dask
matmul first.

**Parallel over time.** When the time axis has ``K > 1`` chunks they do not
run one after another. The scan is linear in the state and the inputs, so
with ``rest = (v_leak, 0)`` and ``M^L`` what ``L`` input-free steps do to a
state's deviation from rest,
``scan(s, x_chunk) = scan(rest, x_chunk) + M^L (s - rest)``; the three phases
of :mod:`li_core.blocked_scan` run where the blocks live:

1. every time chunk but the last is scanned from rest (``chunk_ends``), one
   task per block, keeping only its final deviation from rest ``e_k``;
2. one task per column of neuron blocks walks the ``K - 1`` boundaries
   (``carry``): chunk 0 enters at the initial state and chunk ``k + 1`` at
   ``rest + e_k + M^L (s_k - rest)``, with ``M^L`` from ``chunk_transition``,
   an input-free scan of ``L`` steps itself (no power, no closed form, no
   division);
3. every block is scanned again from its entering state (``rescan_chunks``),
   which gives each step as the one-step-at-a-time loop computes it.

Phase 3 rescans rather than adding ``M^t (s_k - rest)`` to phase 1's
voltages: the same cost, the loop's own arithmetic, and phase 1 keeps only
``K`` small states. In float32 each chunk's scans are the block backend's,
which carry their rounding error within the chunk, and the walk over the
boundaries carries its own (:func:`li_core.blocked_scan.carry`); the
entering states come from that walk, not from the rounded end of the
previous chunk's rescan, so no rounding accumulates from chunk to chunk. The
derivation and the accuracy argument are in docs/model.md ("Few neurons,
long runs: the blocked scan"); docs/dask.md covers clusters, chunking and
Zarr output. Time chunks must have one length but the last, which may be
shorter or longer; other chunkings are rechunked to the longest.

Half precision is computed in float32 (the inputs cast block by block) and
returned in its own dtype. The state, weights and parameters reach each task
as ``(value, slices)`` pairs (:func:`_companion`).
"""

from __future__ import annotations

import contextvars
import functools
import math
import operator
import sys
import warnings
from typing import Any

import li_core
from li_core.arrays import HALF, dtype_name, library_name, namespace
from li_core.blocked_scan import carry, chunk_ends, chunk_transition, rescan_chunks
from li_core.selection import select
from li_core.types import LIParameters, LIState

#: the first axis of :meth:`DaskBackend.asarray` is cut into at most this many chunks
ASARRAY_TIME_CHUNKS = 4
#: and the last axis (of arrays with two or more) into at most this many
ASARRAY_LAST_CHUNKS = 2


def _dask_array() -> Any:
    return sys.modules.get("dask.array") or __import__("dask.array").array


def _numpy() -> Any:
    return sys.modules.get("numpy") or __import__("numpy")


class DaskBackend(li_core.Backend):
    """Lazy leaky integrators on Dask arrays; each block computed by the
    backend chosen for its type."""

    name = "dask"
    library = "dask"
    priority = 10
    extra = "dask"
    dtypes = ("float16", "float32", "float64")
    devices = ("cpu", "cuda")
    autograd = False
    block_libraries = ("numpy", "cupy")

    def availability(self) -> str | None:
        try:
            import dask.array  # noqa: F401 - imported only to check that it is installed
        except Exception as exc:  # noqa: BLE001 - the reason is reported, not hidden
            return f"{type(exc).__name__}: {exc}"
        return None

    def notes(self) -> str:
        """Which backend computes NumPy blocks here (li_core's selection)."""
        numpy_blocks = _chosen_for(_numpy().empty(0, dtype="float32"), "dask blocks")
        return (
            f"results are lazy Dask arrays; NumPy blocks run on {numpy_blocks!r} and CuPy blocks on the backend "
            "chosen for them; a chunked time axis runs in parallel"
        )

    def handles(self, x: Any) -> bool:
        da = sys.modules.get("dask.array")
        return da is not None and isinstance(x, da.Array)

    def companions(self, x: Any) -> tuple[str, ...]:
        """NumPy and the library of ``x``'s blocks (CuPy for CuPy blocks)."""
        blocks = library_name(getattr(x, "_meta", None))
        return ("numpy",) if blocks in (None, "numpy") else ("numpy", blocks)

    def asarray(self, array: Any, device: Any = None) -> Any:
        """A Dask array of a copy of the NumPy ``array``: NumPy blocks, or CuPy
        blocks for ``device="cuda"`` (or ``"cuda:N"``). Chunked on purpose,
        so that the equivalence tools run the chunked paths: the first axis
        (time, for scan inputs) in up to 4 chunks and, for two or more axes,
        the last in up to 2."""
        da = _dask_array()
        data = _numpy().array(array, copy=True)
        if device not in (None, "cpu"):
            kind, _, index = str(device).partition(":")
            if kind != "cuda":
                raise ValueError(f"the dask backend has devices 'cpu' and 'cuda', got device={device!r}")
            import cupy

            with cupy.cuda.Device(int(index or 0)):
                data = cupy.asarray(data)
        chunks = [max(1, size) for size in data.shape]
        if data.ndim >= 1:
            chunks[0] = max(1, math.ceil(data.shape[0] / ASARRAY_TIME_CHUNKS))
        if data.ndim >= 2:
            chunks[-1] = max(1, math.ceil(data.shape[-1] / ASARRAY_LAST_CHUNKS))
        return da.from_array(data, chunks=tuple(chunks))

    def to_numpy(self, x: Any) -> Any:
        """Computes ``x`` and converts its blocks' library with the backend
        chosen for it (CuPy blocks are copied to the host)."""
        result = x.compute() if self.handles(x) else x
        if library_name(result) == "numpy":
            return result
        return li_core.get_backend(_chosen_for(result, "to_numpy")).to_numpy(result)

    def version(self) -> str | None:
        try:
            import dask
        except Exception:  # noqa: BLE001 - the error is the reported reason
            return None
        return str(dask.__version__)

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        dtype = x.dtype
        return _step(x.astype(_compute_dtype(dtype)), state, p, dt, dtype)

    def step(self, x: Any, state: LIState, w: Any, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        dtype = x.dtype
        return _step(self.project(x, w), state, p, dt, dtype)

    def project(self, x: Any, w: Any) -> Any:
        """``x @ w.T`` as one Dask matmul, in float32 for half precision. An
        in-memory ``w`` is cut along its output axis so that the projected
        blocks are about Dask's ``array.chunk-size``; a Dask ``w`` keeps its
        chunks."""
        da = _dask_array()
        compute = _compute_dtype(x.dtype)
        x = x.astype(compute)
        if not isinstance(w, da.Array):
            leading = tuple(max(1, *sizes) for sizes in x.chunks[:-1])
            out = da.core.normalize_chunks(
                (*leading, "auto"), shape=(*leading, w.shape[0]), dtype=_numpy().dtype(compute)
            )[-1]
            w = da.from_array(w, chunks=(out, x.chunks[-1]))
        with warnings.catch_warnings():  # time chunks times neuron chunks is the intended blocking
            warnings.simplefilter("ignore", da.PerformanceWarning)
            return da.matmul(x, w.astype(compute).T)

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        dtype = xs.dtype
        xs = xs.astype(_compute_dtype(dtype)) if w is None else self.project(xs, w)
        return _scan(_regular_in_time(xs), state, p, dt, record_states, dtype)


# -- building the graph ------------------------------------------------------------------


def _compute_dtype(dtype: Any) -> Any:
    """float32 for half precision, else ``dtype`` itself."""
    return _numpy().float32 if dtype_name(dtype) in HALF else dtype


def _regular_in_time(xs: Any) -> Any:
    """``xs`` with time chunks of one length but the last (the carry uses
    one chunk transition), rechunked to the longest where they differ."""
    lengths = xs.chunks[0]
    if len(set(lengths[:-1])) > 1:
        return xs.rechunk({0: max(lengths)})
    return xs


def _chosen_for(block: Any, operation: str) -> str:
    """The name of the backend that li_core's selection (``LI_BACKEND``, then
    priorities) chooses for an in-memory ``block``, in a fresh context: an
    enclosing ``use_backend`` chose this backend for the Dask array, not
    the one for its blocks."""
    return contextvars.Context().run(select, None, block, "the blocks of the input", operation).name


def _block_backend(x: Any, dtype: Any) -> str:
    """The backend for ``x``'s blocks (chosen for its ``_meta``, an empty
    block); it must compute in ``dtype``."""
    name = _chosen_for(x._meta, "dask blocks")
    chosen = li_core.get_backend(name)
    if dtype_name(dtype) not in chosen.dtypes:
        raise TypeError(
            f"the {library_name(x._meta)} blocks of the input run on backend {name!r}, which does not "
            f"support {dtype_name(dtype)} (it supports {', '.join(chosen.dtypes)})"
        )
    return name


def _neuron_indices(ndim: int) -> tuple[str, ...]:
    return tuple(f"n{k}" for k in range(ndim))


def _companion(value: Any, shape: tuple[int, ...], chunks: tuple[tuple[int, ...], ...]) -> list[Any]:
    """A state or parameter field as four blockwise arguments, ``(value,
    index, slices, index)``, that give each task a ``(value, slices)`` pair
    (:func:`_pieces` takes ``value[slices]``, or ``value`` when ``slices`` is
    None): a float as it is; an array (Dask or in memory, broadcasting to
    the neuron ``shape``) chunked like the neuron axes it meets, axes of
    size 1 that broadcast in one chunk. A Dask array of one block, as the
    default state is, goes whole to every task with the slice of its block:
    that costs no rechunking tasks, each a scheduling round trip."""
    if isinstance(value, float):
        return [value, None, None, None]
    da = _dask_array()
    neurons = _neuron_indices(len(shape))
    offset = len(shape) - value.ndim
    index = neurons[offset:]
    target = tuple(chunks[offset + k] if size == shape[offset + k] else (size,) for k, size in enumerate(value.shape))
    if not isinstance(value, da.Array):
        return [da.from_array(value, chunks=target), index, None, None]
    if value.chunks == target:
        return [value, index, None, None]
    if target == chunks[offset:] and all(blocks == 1 for blocks in value.numblocks):
        from dask.layers import ArraySliceDep

        return [value, tuple(f"whole-{axis}" for axis in index), ArraySliceDep(target), index]
    return [value.rechunk(target), index, None, None]


def _companions(values: Any, shape: tuple[int, ...], chunks: tuple[tuple[int, ...], ...]) -> list[Any]:
    """:func:`_companion` of each of ``values``, flattened."""
    return [argument for value in values for argument in _companion(value, shape, chunks)]


def _blockwise(name: str, task: Any, out: tuple[str, ...], *arguments: Any, like: Any, **options: Any) -> Any:
    """``da.blockwise`` of ``task`` (keys ``li-NAME-...``), whose blocks may
    be tuples of arrays (taken apart by :func:`_take`); the inputs are
    aligned already (their time axes differ in chunk length, not in number
    of chunks)."""
    return _dask_array().blockwise(
        task,
        out,
        *arguments,
        align_arrays=False,
        concatenate=True,
        meta=like._meta,
        dtype=like.dtype,
        token=f"li-{name}",
        **options,
    )


def _take(blocks: Any, k: int, index: tuple[str, ...], out: tuple[str, ...], dtype: Any, **options: Any) -> Any:
    """The Dask array ``out`` of element ``k`` of every tuple block of
    ``blocks`` (whose index is ``index``)."""
    da = _dask_array()
    meta = da.utils.meta_from_array(blocks._meta, ndim=len(out), dtype=dtype)
    return da.blockwise(operator.getitem, out, blocks, index, k, None, meta=meta, dtype=dtype, **options)


def _scan(xs: Any, state: LIState, p: LIParameters, dt: float, record_states: bool, dtype: Any) -> tuple[Any, LIState]:
    """The lazy scan of the projected, time-first ``xs`` (in the compute
    dtype, time chunks of one length but the last) from ``state``; results
    in ``dtype``."""
    steps, shape, chunks = xs.shape[0], tuple(xs.shape[1:]), xs.chunks[1:]
    neurons = _neuron_indices(len(shape))
    backend = _block_backend(xs, xs.dtype)
    start = _companions(state, shape, chunks)
    if steps == 0:
        fresh = functools.partial(_fresh_task, dtype=dtype)
        voltages = xs.map_blocks(fresh, dtype=dtype)
        if record_states:  # (three Array objects: setitem on one leaves the others)
            return voltages, LIState(xs.map_blocks(fresh, dtype=dtype), xs.map_blocks(fresh, dtype=dtype))
        meta = _dask_array().utils.meta_from_array(xs._meta, ndim=len(shape), dtype=dtype)
        lazy = [value for value in p if isinstance(value, _dask_array().Array)]  # (checked when computed)
        copies = (
            _dask_array().blockwise(
                fresh,
                neurons,
                *_companion(value, shape, chunks),
                *_companions(lazy, shape, chunks),  # (so that a non-finite one raises, as it would for T > 0)
                meta=meta,
                dtype=dtype,
                align_arrays=False,
                concatenate=True,
            )
            for value in state
        )
        return voltages, LIState(*copies)
    params = _companions(p, shape, chunks)
    time, both = ("t", *neurons), ("t", "s", *neurons)
    lengths = xs.chunks[0]
    if len(lengths) == 1:
        entering = start
    else:
        head = xs[: steps - lengths[-1], ...]  # the last chunk's end state is not needed
        ends = _blockwise(
            "chunk-ends",
            functools.partial(_chunk_end_task, backend=backend, dt=dt),
            both,
            head,
            time,
            *params,
            like=head,
            new_axes={"s": 2},
            adjust_chunks={"t": 1},
        )
        carried = _blockwise(
            "carry",
            functools.partial(_carry_task, backend=backend, dt=dt, length=lengths[0]),
            time,
            ends.rechunk({0: -1}),
            both,
            *start,
            *params,
            like=ends,
            adjust_chunks={"t": len(lengths)},
        )
        entering = [
            argument
            for k in (0, 1)
            for argument in (_take(carried, k, time, time, xs.dtype).rechunk({0: 1}), time, None, None)
        ]
    blocks = _blockwise(
        "chunk-scan",
        functools.partial(_chunk_scan_task, backend=backend, dt=dt, record_states=record_states, dtype=dtype),
        time,
        xs,
        time,
        *entering,
        *params,
        like=xs,
    )
    voltages = _take(blocks, 0, time, time, dtype)
    if record_states:
        return voltages, LIState(_take(blocks, 1, time, time, dtype), _take(blocks, 2, time, time, dtype))
    finals = _take(blocks, 1, time, both, dtype, new_axes={"s": 2}, adjust_chunks={"t": 1})
    return voltages, LIState(finals[-1, 0, ...], finals[-1, 1, ...])


def _step(x: Any, state: LIState, p: LIParameters, dt: float, dtype: Any) -> tuple[Any, LIState]:
    """The lazy Euler step of the weighted (or feed-forward) input ``x`` in
    the compute dtype, one task per block; results in ``dtype``."""
    shape, chunks = tuple(x.shape), x.chunks
    neurons = _neuron_indices(len(shape))
    blocks = _blockwise(
        "step",
        functools.partial(_step_task, backend=_block_backend(x, x.dtype), dt=dt, dtype=dtype),
        neurons,
        x,
        neurons,
        *_companions((*state, *p), shape, chunks),
        like=x,
    )
    v, v_state, i = (_take(blocks, k, neurons, neurons, dtype) for k in range(3))
    return v, LIState(v_state, i)


# -- the tasks (they run where the blocks live, on NumPy or CuPy blocks) --------------------


def _like(x: Any, value: Any) -> Any:
    """A parameter or state block in ``x``'s library and dtype (floats stay floats)."""
    if isinstance(value, float):
        return value
    return namespace(x).asarray(value, dtype=x.dtype)


def _pieces(backend: str, x: Any, pairs: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """The block's backend (looked up by name where the task runs) and the
    task's ``(value, slices)`` pairs (:func:`_companion`) as blocks in
    ``x``'s library and dtype."""
    values = [value if slices is None else value[slices] for value, slices in zip(pairs[::2], pairs[1::2])]
    return li_core.get_backend(backend), [_like(x, value) for value in values]


def _lane_scan(backend: Any) -> Any:
    """The block backend's scan without weights, as :mod:`li_core.blocked_scan` takes it."""

    def lane_scan(xs: Any, state: LIState, p: LIParameters, dt: float, record_states: bool) -> tuple[Any, LIState]:
        return backend.scan(xs, state, None, p, dt, record_states)

    return lane_scan


def _cast(x: Any, dtype: Any) -> Any:
    return namespace(x).astype(x, dtype, copy=False)


def _fresh_task(x: Any, slices: Any = None, *checked: Any, dtype: Any) -> Any:
    """A new array of ``x``'s data (or of ``x[slices]``) in ``dtype``;
    ``checked`` (blocks of parameters, computed to be checked) is unused."""
    return namespace(x).astype(x if slices is None else x[slices], dtype, copy=True)


def _chunk_end_task(x: Any, *pairs: Any, backend: str, dt: float) -> Any:
    """Phase 1 on a block ``[L, *block]`` with the parameters' pairs: its
    final deviation from rest (:func:`li_core.blocked_scan.chunk_ends`),
    stacked as ``[1, 2, *block]`` (``v - v_leak``, ``i``)."""
    chosen, p = _pieces(backend, x, pairs)
    xp = namespace(x)
    end = chunk_ends(xp.expand_dims(x, axis=1), LIParameters(*p), dt, _lane_scan(chosen))
    return xp.stack([end.v, end.i], axis=1)


def _carry_task(ends: Any, *pairs: Any, backend: str, dt: float, length: int) -> tuple[Any, Any]:
    """Phase 2 on a column of neuron blocks: the ends of chunks ``0 .. K-2``
    from rest, as deviations from it, ``[K-1, 2, *block]``, and the initial state and the
    parameters (pairs) give the state entering each of the ``K`` chunks,
    ``(v, i)`` of ``[K, *block]``."""
    chosen, (v0, i0, *values) = _pieces(backend, ends, pairs)
    p = LIParameters(*values)
    xp = namespace(ends)
    transition = chunk_transition(p, dt, length, ends, _lane_scan(chosen))
    start = LIState(v0, i0)
    ends = xp.concat([ends, xp.zeros_like(ends[:1, ...])])  # carry reads rows 0..K-2; the last fills the shape
    entering = carry(LIState(ends[:, 0, ...], ends[:, 1, ...]), start, transition, p.v_leak)
    return entering.v, entering.i


def _chunk_scan_task(x: Any, *pairs: Any, backend: str, dt: float, record_states: bool, dtype: Any) -> tuple[Any, ...]:
    """Phase 3 on a block ``[L, *block]`` from its entering state ``v``,
    ``i`` (``[*block]``, or ``[1, *block]`` from the carry) with the
    parameters (all as pairs): ``(voltages, v, i)`` sequences with
    ``record_states``, else ``(voltages, final)`` with the final state
    stacked as ``[1, 2, *block]``; all in ``dtype``."""
    chosen, (v, i, *values) = _pieces(backend, x, pairs)
    xp = namespace(x)
    lanes = (1, *x.shape[1:])
    start = LIState(xp.reshape(v, lanes), xp.reshape(i, lanes))
    p = LIParameters(*values)
    voltages, final = rescan_chunks(xp.expand_dims(x, axis=1), start, p, dt, record_states, _lane_scan(chosen))
    if record_states:
        return _cast(voltages, dtype), _cast(final.v, dtype), _cast(final.i, dtype)
    return _cast(voltages, dtype), _cast(xp.stack([final.v, final.i], axis=1), dtype)


def _step_task(x: Any, *pairs: Any, backend: str, dt: float, dtype: Any) -> tuple[Any, Any, Any]:
    """One Euler step of a block on its backend, with the state and the
    parameters as pairs: ``(v', state.v, state.i)`` in ``dtype``."""
    chosen, (v, i, *values) = _pieces(backend, x, pairs)
    v_new, state = chosen.feed_forward_step(x, LIState(v, i), LIParameters(*values), dt)
    return _cast(v_new, dtype), _cast(state.v, dtype), _cast(state.i, dtype)


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [DaskBackend()]
