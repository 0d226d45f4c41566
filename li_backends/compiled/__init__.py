"""Compiled CPU loops: the scan and its adjoint through numba, when it imports.

The ``numpy`` backend's scan (float32 and float64) and, on the CPU, the
``torch`` backend's scan op and its backward run the kernels of
:mod:`.kernels` on their arrays' memory instead of a loop of array
operations or the time-blocked scan. The kernels cut the neurons into
contiguous blocks that run on numba's threads (``numba.set_num_threads``, or
``NUMBA_NUM_THREADS`` before numba is imported), each block stepping through
time on its own, so a scan reads its input and writes its outputs once. The
forward computes exactly the ``numpy`` backend's loop (same operations, same
order, no ``fastmath``), so the two give bitwise the same numbers: in
float32 both carry the rounding error of every state update (the
compensated recurrences of :mod:`.kernels`), in float64 neither does.

They run unless numba does not import, the environment variable
``LI_NUMBA=0`` is set, or :data:`ENABLED` is False. Nothing here imports numba
until a scan (or ``li backends``) asks whether the kernels can run; the
kernels are compiled once and cached on disk (numba's ``cache=True``), so a
new process loads them instead of compiling.

The first scan that would run them starts loading them (``import numba``,
the kernels from the cache) in a thread of its own and, where it is small
(:func:`status`), runs the loop of array operations meanwhile, whose numbers
are the kernels' bit for bit; a larger scan waits for the load.
``LI_NUMBA_BACKGROUND=0`` makes every scan wait (the tests set it, so that
a process runs the same path whenever it asks). The thread is not a daemon
(a daemon thread importing a C extension at interpreter shutdown can crash
it): a script whose first scan was small may wait for the load at exit.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import threading
from typing import Any, NamedTuple

from li_core.float_float import compensated
from li_core.forking import forked_from_threads
from li_core.rates import Rate, fraction

#: set to False to run the NumPy and torch loops (and the blocked scan) where
#: the compiled loops would (the tests and the benchmarks compare both)
ENABLED = True
#: a block has at most this many neurons: long rows write fresh output pages
#: in order (W1, 32,768 neurons on one thread, was fastest as one block),
#: while a block's state and rates must stay in the core's caches
MAX_BLOCK = 32768
#: block lengths are multiples of this many neurons (a 64-byte cache line of float32)
ALIGN = 16
#: a scan takes one more thread per this many neuron-steps (about 0.3 ms of
#: work): waking a thread costs more than a small scan, and far more on a
#: busy machine, where the thread may not get a core for a while
GRAIN = 2**18


# Measured on one core of a 2-core machine: the NumPy and torch loops cost
# 3-7 ns per neuron-step plus 5-60 µs per step (about 2**13 neuron-steps);
# the load about 0.7 s (``import numba`` 0.3 s, the first kernel from the
# cache 0.35 s, each further one 10 ms). A scan up to LOOP_WORK (0.05-0.12 s
# of loop) is done well before the load would be; a larger one loses less
# by waiting for the kernels.
#: while the kernels load, a scan runs the loop instead where its work,
#: ``steps * (neurons + STEP_WORK)`` neuron-steps, is at most this
LOOP_WORK = 2**24
#: a step's fixed cost in the loops, in neuron-steps (see :data:`LOOP_WORK`)
STEP_WORK = 2**13

_lock = threading.Lock()
_loader: threading.Thread | None = None
_loaded = threading.Event()  # set once the load has finished, or failed
_load_error: str | None = None  # why it failed, or None


def unavailable() -> str | None:
    """Why the compiled loops do not run in this process, or None when they
    do (waits for the kernels to load, where they are loading)."""
    reason = _switched_off()
    if reason is None:
        _start()
        _loaded.wait()
        reason = _load_error
    return reason


def status(steps: int, neurons: int, exact_loop: bool = True) -> str:
    """Which loop a scan of ``steps`` steps of ``neurons`` neurons runs:
    ``"compiled"`` (the kernels are loaded), ``"loop"`` (they are loading,
    and the scan is small enough, :data:`LOOP_WORK`, to run the caller's
    loop meanwhile) or ``"off"`` (they do not run: :func:`unavailable` says
    why). Starts the load the first time; a larger scan waits for it, and so
    does every scan whose caller's loop does not give the kernels' numbers
    bit for bit (``exact_loop`` False)."""
    if _switched_off() is not None:
        return "off"
    _start()
    if not _loaded.is_set():
        background = os.environ.get("LI_NUMBA_BACKGROUND", "").strip() != "0"
        if background and exact_loop and steps * (neurons + STEP_WORK) <= LOOP_WORK:
            return "loop"
        _loaded.wait()
    return "off" if _load_error is not None else "compiled"


def _switched_off() -> str | None:
    """The reasons against the compiled loops that need no numba."""
    if os.environ.get("LI_NUMBA", "").strip() == "0":
        return "LI_NUMBA=0 is set"
    if not ENABLED:
        return "li_backends.compiled.ENABLED is False"
    if forked_from_threads():
        return (
            "this process was forked from one with other threads running (numba's or torch's OpenMP threads, "
            "say), whose thread pool a fork cannot reuse"
        )
    return None


def _start() -> None:
    """Starts the load in a thread of its own, once (runs it here where no
    thread can start, at interpreter shutdown say)."""
    global _loader
    with _lock:
        if _loader is not None:
            return
        _loader = threading.Thread(target=_load, name="li-compiled-loader")
        try:
            _loader.start()
            return
        except RuntimeError:
            pass
    _load()


def _load() -> None:
    """Imports the kernels and loads those the scans use most; records why
    that failed, if it did. Never raises: a scan waiting for it runs the
    loops instead."""
    global _load_error
    try:
        _load_error = _import_error()
        if _load_error is None:
            _warm_up()
    except Exception as error:  # noqa: BLE001 - whatever failed, the loops of array operations still run
        _load_error = f"the compiled kernels do not load ({type(error).__name__}: {error})"
    finally:
        _loaded.set()


def _import_error() -> str | None:
    """The reason numba's kernels cannot be imported."""
    try:
        importlib.import_module(__name__ + ".kernels")
    except Exception as error:  # noqa: BLE001 - a broken numba (say, built for another NumPy) leaves the loops to run
        from li_core.backend import install_command

        return f"numba does not import ({type(error).__name__}: {error}); to install it: {install_command('numba')}"
    return None


def _warm_up() -> None:
    """Loads (from numba's cache, or compiles) the kernels that small
    float32 and float64 scans and their adjoint run when the rates are
    numbers and ``v_leak`` is 0: one step of one neuron each. (Other kinds
    of arguments, and the parallel kernels, load at their first scan.)"""
    import numpy as np

    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        one, row = np.zeros((1, 1), dtype), np.zeros(1, dtype)
        rate = Rate(0.5)
        scan(one, row, row, rate, rate, None, np.empty_like(one), None, None, np.empty(1, dtype))
        scan_backward(one, None, 0.0, rate, rate, None, np.empty_like(one), np.empty(1, dtype), None)


def notes(cpu: str) -> str:
    """For ``li backends``: which loop the scans on ``cpu`` (what a backend
    computes on, e.g. "NumPy arrays") take, and why."""
    reason = unavailable()
    if reason is None:
        import numba

        return f"{cpu}: compiled loops (numba {numba.__version__}, {numba.get_num_threads()} threads)"
    return f"{cpu}: loops of array operations, not the compiled ones ({reason})"


def threads(count: int | None = None) -> str:
    """Sets the compiled loops' threads to ``count`` (``numba.set_num_threads``,
    where they run and ``count`` is given); returns a line that says what
    they run on, for benchmarks."""
    reason = unavailable()
    if reason is not None:
        return f"compiled loops: off ({reason})"
    import numba

    if count:
        numba.set_num_threads(count)
    return f"compiled loops: numba {numba.__version__}, {numba.get_num_threads()} threads"


@functools.cache
def _kernels() -> Any:
    return importlib.import_module(__name__ + ".kernels")


def block(neurons: int) -> int:
    """The neurons per block: an even share per thread, at most
    :data:`MAX_BLOCK`, rounded up to :data:`ALIGN`."""
    import numba

    share = math.ceil(neurons / numba.get_num_threads())
    return max(ALIGN, min(MAX_BLOCK, math.ceil(share / ALIGN) * ALIGN))


def _per_neuron(value: Any, size: int, neurons: tuple, dtype: Any) -> Any:
    """``value`` (a number or an array broadcasting to ``neurons``, of
    ``size`` elements) as a contiguous, read-only ``[N]`` array of ``dtype``;
    a view where ``value`` already is one (the state, usually)."""
    import numpy as np

    if type(value) is np.ndarray and value.size == size and value.dtype == dtype and value.flags.c_contiguous:
        flat = value.reshape(size)  # a view of its own
        flat.flags.writeable = False
        return flat
    flat = np.empty(size, dtype)
    flat.reshape(neurons)[...] = value  # broadcast and cast as np.asarray(value, dtype) would
    flat.flags.writeable = False
    return flat


def _parameters(a: Rate, d: Rate, v_leak: Any, size: int, neurons: tuple, dtype: Any) -> list:
    """``[a, a_scale, d, d_scale, v_leak]`` for the kernels, which form the
    fractions ``a*a_scale`` and ``d*d_scale`` themselves: scalars of
    ``dtype`` where every parameter is a single number, else each an ``[N]``
    array (two compilations of a kernel, not one per combination). A float
    rate arrives as its fraction, formed here in double precision, with a
    scale of 1; an array rate as it is, with its scale rounded to ``dtype``
    (see :mod:`li_core.rates`)."""
    import numpy as np

    typed = dtype.type
    if type(a.value) is float and type(d.value) is float and type(v_leak) is float:  # (the common case first)
        one = typed(1.0)
        return [typed(a.value * a.scale), one, typed(d.value * d.scale), one, typed(v_leak)]
    scalars = all(type(value) is float or value.size == 1 for value in (a.value, d.value, v_leak))

    def laid_out(value: Any) -> Any:
        return np.asarray(value, dtype=dtype).reshape(())[()] if scalars else _per_neuron(value, size, neurons, dtype)

    out: list = []
    for rate in (a, d):
        value, scale = (fraction(rate), 1.0) if type(rate.value) is float else rate
        out += [laid_out(value), typed(scale)]
    return [*out, laid_out(v_leak)]


def _sequence(array: Any, size: int, dtype: Any, *, one_row: bool = False) -> Any:
    """An input sequence ``[rows, *neurons]`` as a contiguous, read-only
    ``[rows, N]``; with ``one_row``, a sequence broadcast over time (the
    gradient of a sum arrives so) as its one row, which a kernel reads at
    every step."""
    import numpy as np

    if one_row and array.shape[0] > 1 and array.strides[0] == 0:
        array = array[:1]
    return _read_only(np.ascontiguousarray(array, dtype=dtype).reshape(-1, size))


def _read_only(array: Any) -> Any:
    """A read-only view: every input reaches the kernels with the same numba
    type, whether its caller's array is writable or not (one compilation)."""
    view = array.view()
    view.flags.writeable = False
    return view


def _rows(array: Any, size: int) -> Any:
    """A contiguous output ``[rows, *neurons]`` as ``[rows, N]``, a view
    (raises rather than copy)."""
    view = array.view()
    view.shape = (-1, size)
    return view


def _run(name: str, size: int, steps: int, *args: Any) -> None:
    """The kernel ``name`` of :mod:`.kernels` on ``args``. A scan of fewer
    than two :data:`GRAIN` of neuron-steps, which one thread runs, calls the
    kernel's block function (``name + "_block"``) on each block of at most
    :data:`MAX_BLOCK` neurons from here: numba's thread pool is not touched
    and its thread count neither read nor set. A larger one runs the
    parallel kernel on as many threads as it has blocks and :data:`GRAIN`
    neuron-steps, at most ``numba.get_num_threads()``: a thread without a
    block would only hold the others up at the end. Each neuron's numbers
    are the same either way."""
    kernels = _kernels()
    if size * steps < 2 * GRAIN:
        serial = getattr(kernels, name + "_block")
        for lo in range(0, size, MAX_BLOCK):
            serial(*args, lo, min(size, lo + MAX_BLOCK))
        return
    import numba

    length = block(size)
    threads = numba.get_num_threads()
    wanted = max(1, min(threads, math.ceil(size / length), size * steps // GRAIN))
    numba.set_num_threads(wanted)
    try:
        getattr(kernels, name)(*args, length)
    finally:
        numba.set_num_threads(threads)


class Prepared(NamedTuple):
    """What :func:`scan` laid out for the kernels that its adjoint reads
    again (:func:`scan_backward`): the initial voltage ``[N]``, read-only
    ``[T, N]`` views of the voltages and of ``j``, and the parameters in the
    kernels' form (:func:`_parameters`)."""

    v0: Any
    voltages: Any
    js: Any
    parameters: list


def scan(
    xs: Any,
    v0: Any,
    i0: Any,
    a: Rate,
    d: Rate,
    v_leak: Any,
    voltages: Any,
    currents: Any,
    js: Any,
    i_end: Any,
    v_end: Any = None,
) -> Prepared | None:
    """The forward scan of NumPy arrays ``xs`` ``[T, *neurons]`` (``T >= 1``
    and at least one neuron), from ``v0``, ``i0`` with the rates ``a``,
    ``d`` (:class:`li_core.rates.Rate` s, whose values are numbers or arrays
    broadcasting to the neurons) and ``v_leak``, a number or such an array,
    or None for ``v_leak = 0``. Writes
    ``v_t`` into ``voltages`` ``[T, *neurons]``, ``i_t`` into ``currents``
    and ``j_t = i_{t-1} + x_t`` into ``js`` where they are given (else None),
    the final current into ``i_end`` and, where it is given, the final
    voltage into ``v_end`` (so that no caller copies it out of
    ``voltages``): contiguous arrays of the compute dtype, float32 or
    float64. Returns, where ``js`` is given, what the adjoint reads again
    (:class:`Prepared`), else None."""
    import numpy as np

    neurons = xs.shape[1:]
    size, dtype = math.prod(neurons), voltages.dtype
    v_init = _per_neuron(v0, size, neurons, dtype)
    state = (v_init, v_init if i0 is v0 else _per_neuron(i0, size, neurons, dtype))
    parameters = _parameters(a, d, 0.0 if v_leak is None else v_leak, size, neurons, dtype)
    rate_v, scale_v, rate_i, scale_i, leak = parameters
    unwanted = np.empty((0, size), dtype)
    outputs = [unwanted if out is None else _rows(out, size) for out in (voltages, currents, js)]
    _run(
        "scan",
        size,
        xs.shape[0],
        _sequence(xs, size, dtype),
        *state,
        rate_v,
        scale_v,
        rate_i,
        scale_i,
        None if v_leak is None else leak,
        compensated(dtype),
        *outputs,
        _rows(i_end, size)[0],
        unwanted[:, 0] if v_end is None else _rows(v_end, size)[0],
    )
    if js is None:
        return None
    return Prepared(v_init, _read_only(outputs[0]), _read_only(outputs[2]), parameters)


def scan_backward(
    gv: Any,
    gi: Any,
    gi_end: Any,
    a: Rate,
    d: Rate,
    saved: tuple | None,
    dx: Any,
    dv0: Any,
    shares: tuple | None,
    prepared: Prepared | None = None,
) -> None:
    """The adjoint of :func:`scan` on NumPy arrays: writes ``dL/dx`` into
    the contiguous ``dx`` ``[T, *neurons]`` and ``dL/dv_init`` into
    ``dv0``, from the gradients of the voltages ``gv`` and of the recorded
    currents ``gi`` (each ``[T, *neurons]``, or ``[1, *neurons]`` standing
    for every step; ``gi`` may be None) and of the final current ``gi_end``.
    With ``saved = (v0, voltages, js, v_leak)`` of the forward, also each
    neuron's share of the gradients of ``a``, ``d`` and ``v_leak`` into the
    three contiguous ``shares`` (gradients with respect to the fractions:
    multiplying the first two by their rates' scales is the caller's).
    ``prepared``, what the forward returned, stands for ``saved`` and the
    rates (nothing laid out twice)."""
    import numpy as np

    neurons = dx.shape[1:]
    size, dtype = math.prod(neurons), dx.dtype
    no_rows = _read_only(np.empty((0, size), dtype))
    if prepared is not None and shares is not None:
        v0, voltages, js, parameters = prepared
        outputs = tuple(_rows(share, size)[0] for share in shares)
    elif saved is None or shares is None:  # no parameter gradients: no sequences to read, no shares to write
        v0, voltages, js = no_rows[:, 0], no_rows, no_rows
        parameters = _parameters(a, d, 0.0, size, neurons, dtype)
        outputs = (np.empty(0, dtype),) * 3
    else:
        v0, voltages, js, leak = saved
        v0, voltages, js = (
            _per_neuron(v0, size, neurons, dtype),
            _sequence(voltages, size, dtype),
            _sequence(js, size, dtype),
        )
        parameters = _parameters(a, d, leak, size, neurons, dtype)
        outputs = tuple(_rows(share, size)[0] for share in shares)
    gis = no_rows if gi is None else _sequence(gi, size, dtype, one_row=True)
    rate_v, scale_v, rate_i, scale_i, v_leak = parameters
    inputs = (
        _sequence(gv, size, dtype, one_row=True),
        gis,
        _per_neuron(gi_end, size, neurons, dtype),
        rate_v,
        scale_v,
        rate_i,
        scale_i,
        v0,
        voltages,
        js,
    )
    _run(
        "scan_backward",
        size,
        dx.shape[0],
        *inputs,
        v_leak,
        compensated(dtype),
        _rows(dx, size),
        _rows(dv0, size)[0],
        *outputs,
    )
