"""``torch.nn`` modules over the ``torch`` backend, shaped like Norse's.

- :class:`LICell`: one feed-forward step per call (input ``[*, n]``);
- :class:`LILinearCell`: one step of input spikes through a trainable
  ``[hidden_size, input_size]`` weight matrix;
- :class:`LI`: a time-first sequence ``[T, *, n]`` in one fused scan.

Every module's ``forward(input, state=None)`` returns ``(output, state)``
like Norse's: ``state=None`` starts at rest (``v = v_leak``, ``i = 0``), and
the returned ``LIState`` is passed back in on the next call. They compute
what ``li_core``'s public functions compute with ``backend="torch"``, bit for
bit, through the same checks (see Checks below).

Parameters: ``p`` holds Python floats or tensors. A tensor field is a buffer
(it follows ``.to()``), an ``nn.Parameter`` field is trained as given, and
``train_time_constants=True`` makes ``tau_syn_inv`` and ``tau_mem_inv``
trainable ``nn.Parameter``\\ s initialised from ``p``: per neuron (shape
``[size]``, the last input axis; ``[hidden_size]`` for the linear cell) when
``size`` is given, else one scalar each. They are inverse time constants in
1/s, trained as they are (keep ``dt*tau_inv`` in ``(0, 2)`` for a stable
neuron). Floats take the input's dtype; tensors must match it, so convert the
module with ``.to(dtype)`` for non-default dtypes.

Checks: a module runs ``li_core``'s checks of a call in full (the functional
API's: the same errors, and the unstable-step warning) only when something
they read differs from the last call that passed them; otherwise it calls the
backend directly. Compared on every call: ``dt``; each parameter field and
``input_weights`` by identity (reassigning one is a change), and a tensor's
version counter (``tensor._version``, moved by every in-place write:
optimizer steps, ``load_state_dict``, ``fill_`` under ``torch.no_grad()``);
the input's and the state's type, dtype, device, layout and shape, and
whether a state is given. Conversions (``.to()``, ``.double()``, ``.cuda()``:
they go through ``nn.Module._apply``, which the modules override) and
unpickling or ``copy.deepcopy`` forget the last check. The one blind spot:
writes through ``.data`` (``p.data.clamp_(...)``, ``p.data = t``) move no
version counter; call :func:`recheck` on the model after them. Under
``torch.compile`` every traced call is checked in full.
"""

from __future__ import annotations

import math
from operator import is_
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from li_core import LIParameters, LIState, li_scan
from li_core.backend import Backend
from li_core.selection import select
from li_core.validation import Call, check_call, complete_state

if TYPE_CHECKING:
    import nir


class _LIModule(nn.Module):
    """Holds ``p`` (floats, buffers or parameters) and ``dt``."""

    def __init__(self, p: LIParameters, dt: float, train_time_constants: bool, size: int | None) -> None:
        super().__init__()
        self.dt = dt
        for name, value in zip(LIParameters._fields, p):
            if isinstance(value, nn.Parameter):
                self.register_parameter(name, value)
            elif train_time_constants and name != "v_leak":
                initial = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach()
                if size is not None:
                    initial = initial.expand(size)
                self.register_parameter(name, nn.Parameter(initial.clone()))
            elif isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
            else:
                setattr(self, name, float(value))
        #: the last call that passed the checks: its key, the parameter fields
        #: and weights it was given, the fields of its checked ``Call`` after
        #: the input and the state, and its backend
        self._checked: tuple[tuple, tuple, tuple, Backend] | None = None

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        """Conversions (``.to()``, ``.double()``, ...) may change the
        parameters' dtype and device without moving their version counters:
        the next call is checked in full."""
        self._checked = None
        return super()._apply(fn, recurse)

    def __setstate__(self, state: dict) -> None:
        """Unpickled (``torch.load`` may move the tensors, ``map_location``)
        or deep-copied: the next call is checked in full."""
        super().__setstate__(state)
        self._checked = None

    def _key(self, x: Any, state: Any, p: LIParameters, weights: Any) -> tuple | None:
        """What ``check_call`` reads of a call beyond the identity of the
        parameter fields and weights (see the module docstring), or None where
        the call cannot be keyed (a non-tensor input or state, a field that is
        neither a float nor a tensor, an inference tensor, which has no version
        counter): then it is checked in full."""
        dt = self.dt
        if type(dt) is not float or not isinstance(x, torch.Tensor):
            return None
        key: list = [dt, type(x), x.dtype, x.device, x.layout, x.shape]
        for value in (*p, weights):
            if isinstance(value, torch.Tensor):
                try:
                    key.append(value._version)
                except RuntimeError:
                    return None
            elif type(value) is not float and value is not None:
                return None
        if state is None:
            key.append(None)
        elif type(state) is LIState:
            for a in state:
                if not isinstance(a, torch.Tensor):
                    return None
                key += (type(a), a.dtype, a.device, a.layout, a.shape)
        else:
            return None
        return tuple(key)

    def _check(self, argument: str, operation: str, x: Any, state: Any, weights: Any) -> tuple[Call, Backend]:
        """The checked call and its backend: the last checked call's where the
        key and the identity of every parameter field and the weights are the
        same, else ``check_call``'s (which raises or warns as the functional
        API's ``operation`` does, at the caller's line)."""
        p = self.p
        compiling = torch.compiler.is_compiling()
        key = None if compiling else self._key(x, state, p, weights)
        checked = self._checked
        if key is not None and checked is not None and checked[0] == key and all(map(is_, (*p, weights), checked[1])):
            return Call(x, state, *checked[2]), checked[3]
        call = check_call(
            argument,
            x,
            state,
            weights,
            p,
            self.dt,
            time_axis=operation == "li_scan",
            weights_required=weights is not None,
        )
        backend = select("torch", x, argument, operation)
        if not compiling:
            self._checked = None if key is None else (key, (*p, weights), call[2:], backend)
        return call, backend

    def _resting_state(self, input: torch.Tensor, neurons: tuple[int, ...]) -> LIState | None:
        """Norse's resting state: while autograd records and nothing else in the
        call requires grad, ``v = v_leak`` is a leaf that requires grad, so
        ``module(x)[0].sum().backward()`` runs as it does in Norse. Otherwise,
        and inside ``torch.compile`` (which cannot return such a leaf's
        descendants), None: li_core's resting state."""
        if not (isinstance(input, torch.Tensor) and torch.is_grad_enabled()) or input.requires_grad:
            return None
        if torch.compiler.is_compiling() or any(parameter.requires_grad for parameter in self.parameters()):
            return None
        try:
            v = torch.zeros(neurons, dtype=input.dtype, device=input.device).add_(self.p.v_leak)
        except RuntimeError:
            return None  # a v_leak that does not fit: li_core's checks say so, naming it
        return LIState(v.requires_grad_(), torch.zeros_like(v))

    def to_nir(self, shape: int | tuple[int, ...] | None = None, *, target: str | None = None) -> nir.NIRGraph:
        """This module as a NIR graph (needs the ``nir`` extra): ``Input -> Linear
        -> CubaLI -> Output`` for ``LILinearCell``, ``Input -> CubaLI -> Output``
        for ``LI`` and ``LICell``, whose neuron ``shape`` is needed unless their
        parameters are per-neuron. ``target`` (one of
        :data:`li_core.nir.TARGETS`: ``"snntorch"``, ``"spikingjelly"``,
        ``"norse"``, ``"sinabs"``, ``"rockpool"``) writes the graph that tool's
        importer runs with the same numbers. See :func:`li_core.nir.to_nir`."""
        from li_core.nir import module_to_nir

        return module_to_nir(self, shape=shape, target=target)

    @property
    def p(self) -> LIParameters:
        """The current parameters."""
        return LIParameters(self.tau_syn_inv, self.tau_mem_inv, self.v_leak)

    def extra_repr(self) -> str:
        def show(value):
            return f"{value:g}" if isinstance(value, float) else f"tensor{tuple(value.shape)}"

        fields = ", ".join(f"{name}={show(value)}" for name, value in zip(LIParameters._fields, self.p))
        return f"{fields}, dt={self.dt:g}"


class LICell(_LIModule):
    """One Euler step of leaky integrators driven by an input current:
    ``j = i + x``, ``v' = v + dt*tau_mem_inv*((v_leak - v) + j)``,
    ``i' = j - dt*tau_syn_inv*j``.

    ``forward(input [*, n], state=None) -> (v', LIState(v', i'))``.
    ``train_time_constants`` and ``size`` (``n``, for per-neuron constants):
    see the module docstring.
    """

    def __init__(
        self,
        p: LIParameters = LIParameters(),
        dt: float = 0.001,
        *,
        train_time_constants: bool = False,
        size: int | None = None,
    ) -> None:
        super().__init__(p, dt, train_time_constants, size)

    def forward(self, input: torch.Tensor, state: LIState | None = None) -> tuple[torch.Tensor, LIState]:
        if state is None:
            state = self._resting_state(input, tuple(input.shape))
        call, backend = self._check("input_tensor", "li_feed_forward_step", input, state, None)
        return backend.feed_forward_step(input, complete_state(call, backend), call.p, call.dt)


class LILinearCell(_LIModule):
    """One Euler step of ``hidden_size`` leaky integrators whose current jumps
    by ``input @ input_weights.T``.

    ``input_weights`` is an ``nn.Parameter`` ``[hidden_size, input_size]``
    initialised with ``N(0, 1/input_size)`` entries.
    ``forward(input [*, input_size], state=None) -> (v', LIState(v', i'))``
    with ``v'``, ``i'`` of shape ``[*, hidden_size]``.
    ``train_time_constants=True`` gives per-neuron ``[hidden_size]`` constants.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        p: LIParameters = LIParameters(),
        dt: float = 0.001,
        *,
        train_time_constants: bool = False,
    ) -> None:
        super().__init__(p, dt, train_time_constants, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_weights = nn.Parameter(torch.randn(hidden_size, input_size) / math.sqrt(input_size))

    def forward(self, input: torch.Tensor, state: LIState | None = None) -> tuple[torch.Tensor, LIState]:
        if state is None:
            state = self._resting_state(input, (*input.shape[:-1], self.hidden_size))
        call, backend = self._check("input_spikes", "li_step", input, state, self.input_weights)
        return backend.step(input, complete_state(call, backend), call.weights, call.p, call.dt)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, {super().extra_repr()}"


class LI(_LIModule):
    """Leaky integrators over a time-first sequence, in one fused scan.

    ``forward(input [T, *, n], state=None) -> (voltages [T, *, n], state)``:
    the final ``LIState``, or with ``record_states=True`` an ``LIState`` of
    the whole ``[T, *, n]`` sequences. Gradients flow to the input, the
    initial state and trainable parameters. ``train_time_constants`` and
    ``size``: see the module docstring.
    """

    def __init__(
        self,
        p: LIParameters = LIParameters(),
        dt: float = 0.001,
        *,
        train_time_constants: bool = False,
        size: int | None = None,
        record_states: bool = False,
    ) -> None:
        super().__init__(p, dt, train_time_constants, size)
        self.record_states = record_states

    def forward(self, input: torch.Tensor, state: LIState | None = None) -> tuple[torch.Tensor, LIState]:
        if state is None:
            state = self._resting_state(input, tuple(input.shape[1:]))
        record_states = self.record_states
        if type(record_states) is not bool:  # li_scan refuses it, naming it
            return li_scan(input, state, None, self.p, self.dt, backend="torch", record_states=record_states)
        call, backend = self._check("inputs", "li_scan", input, state, None)
        return backend.scan(input, complete_state(call, backend), None, call.p, call.dt, record_states)


def recheck(model: nn.Module) -> None:
    """Check every ``li_backends.torch_nn`` module in ``model`` (itself
    included) in full on its next call: needed only after writes through
    ``.data``, which move no version counter (see the module docstring)."""
    for module in model.modules():
        if isinstance(module, _LIModule):
            module._checked = None
