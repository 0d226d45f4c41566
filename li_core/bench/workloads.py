"""The standard workloads of ``li bench``: shapes, inputs and parameters,
generated in NumPy with a fixed seed so every backend times the same numbers."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..types import LIParameters

PARAMETERS = LIParameters()
DT = 1e-3
#: the sequence lengths and neuron counts of the host-overhead grid
HOST_STEPS = (1, 16, 256)
HOST_NEURONS = (8, 512, 4096)


@dataclasses.dataclass(frozen=True)
class Workload:
    """One standard benchmark: a scan over ``steps`` time steps of
    ``[batch, neurons]`` leaky integrators, fed through a ``[neurons,
    inputs]`` weight matrix when ``inputs`` is set, and differentiated
    (forward and backward of ``vs.sum()``) when ``training`` is set. With
    ``per_neuron`` every neuron has its own time constants and leak; else the
    defaults. With ``loop_steps`` the step loop yardstick is timed over the
    first ``loop_steps`` steps only and its time scaled to ``steps`` (its
    cost per step is constant; a long run would take minutes)."""

    name: str
    title: str
    steps: int
    batch: int
    neurons: int
    inputs: int | None = None
    training: bool = False
    per_neuron: bool = False
    loop_steps: int | None = None
    #: a grid of host-overhead cells (module ``li_core.bench.host``): every
    #: ``T`` of ``HOST_STEPS`` up to ``steps`` by every ``N`` of
    #: ``HOST_NEURONS`` up to ``neurons``
    host: bool = False
    #: pairs of fresh processes behind the host workload's first-call row
    #: (module ``li_core.bench.first_call``); None: as many as ``repeats``
    first_calls: int | None = None

    @property
    def shape(self) -> str:
        if self.host:
            steps, neurons = zip(*self.grid())
            return f"T in {{{','.join(map(str, sorted(set(steps))))}}} x N in {{{','.join(map(str, sorted(set(neurons))))}}} B={self.batch}"
        inputs = f" in={self.inputs}" if self.inputs is not None else ""
        return f"T={self.steps} B={self.batch}{inputs} N={self.neurons}"

    def grid(self) -> list[tuple[int, int]]:
        """The ``(T, N)`` cells of a host workload."""
        steps = [s for s in HOST_STEPS if s <= self.steps] or [self.steps]
        neurons = [n for n in HOST_NEURONS if n <= self.neurons] or [self.neurons]
        return [(s, n) for s in steps for n in neurons]

    def quick(self) -> Workload:
        """A much smaller version with the same structure (for tests)."""
        return dataclasses.replace(
            self,
            steps=max(2, self.steps // 10),
            batch=max(1, self.batch // 4),
            neurons=max(8, self.neurons // 16),
            inputs=None if self.inputs is None else max(8, self.inputs // 16),
            loop_steps=None if self.loop_steps is None else max(2, self.loop_steps // 10),
            first_calls=1 if self.host else None,
        )

    def arrays(self, dtype: str, seed: int = 0) -> tuple[Any, Any]:
        """The NumPy input (and weights, or None) of this workload: a
        standard-normal current, or with weights Bernoulli spikes with
        probability 0.05 per step through normal weights scaled by
        ``1/sqrt(inputs)``."""
        import numpy as np

        rng = np.random.default_rng(seed)
        if self.inputs is None:
            return rng.standard_normal((self.steps, self.batch, self.neurons)).astype(dtype), None
        spikes = (rng.random((self.steps, self.batch, self.inputs)) < 0.05).astype(dtype)
        weights = (rng.standard_normal((self.neurons, self.inputs)) / np.sqrt(self.inputs)).astype(dtype)
        return spikes, weights

    def parameters(self, dtype: str, seed: int = 0) -> LIParameters:
        """The parameters: the defaults, or with ``per_neuron`` NumPy arrays
        of shape ``[neurons]`` with ``dt*tau_inv`` uniform in (0.05, 0.45)
        and ``v_leak`` uniform in (-1, 1) (drawn apart from the inputs)."""
        if not self.per_neuron:
            return PARAMETERS
        import numpy as np

        rng = np.random.default_rng([seed, 1])
        rates = rng.uniform(0.05, 0.45, size=(2, self.neurons)) / DT
        leak = rng.uniform(-1.0, 1.0, size=self.neurons)
        return LIParameters(*(value.astype(dtype) for value in (*rates, leak)))


#: the standard workloads, by name
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("feedforward", "feed-forward scan", 1000, 32, 1024),
        Workload("training", "training (forward + backward)", 500, 16, 4096, training=True),
        Workload("small", "small scan", 100, 8, 256),
        Workload("weighted", "weighted scan", 500, 16, 1024, inputs=1024),
        Workload("long", "few neurons, long run", 100_000, 1, 16, per_neuron=True, loop_steps=10_000),
        Workload("host", "host overhead per call, and calls with a goal beside their floors", 256, 2, 4096, host=True),
    )
}
