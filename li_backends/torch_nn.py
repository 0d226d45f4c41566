"""``torch.nn`` modules over the ``torch`` backend, shaped like Norse's.

- :class:`LICell`: one feed-forward step per call (input ``[*, n]``);
- :class:`LILinearCell`: one step of input spikes through a trainable
  ``[hidden_size, input_size]`` weight matrix;
- :class:`LI`: a time-first sequence ``[T, *, n]`` in one fused scan.

Every module's ``forward(input, state=None)`` returns ``(output, state)``
like Norse's: ``state=None`` starts at rest (``v = v_leak``, ``i = 0``), and
the returned ``LIState`` is passed back in on the next call. They call
``li_core``'s public functions with ``backend="torch"``.

Parameters: ``p`` holds Python floats or tensors. A tensor field is a buffer
(it follows ``.to()``), an ``nn.Parameter`` field is trained as given, and
``train_time_constants=True`` makes ``tau_syn_inv`` and ``tau_mem_inv``
trainable ``nn.Parameter``\\ s initialised from ``p``: per neuron (shape
``[size]``, the last input axis; ``[hidden_size]`` for the linear cell) when
``size`` is given, else one scalar each. They are inverse time constants in
1/s, trained as they are (keep ``dt*tau_inv`` in ``(0, 2)`` for a stable
neuron). Floats take the input's dtype; tensors must match it, so convert the
module with ``.to(dtype)`` for non-default dtypes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, li_step

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
        return li_feed_forward_step(input, state, self.p, self.dt, backend="torch")


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
        return li_step(input, state, self.input_weights, self.p, self.dt, backend="torch")

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
        return li_scan(input, state, None, self.p, self.dt, backend="torch", record_states=self.record_states)
