"""The interface every backend implements.

The core validates every argument, picks the backend and fills in defaults
before it calls a backend, so a backend's operations receive:

- ``x`` / ``xs``: an input array of a library and dtype the backend declared
  (``xs`` is time-first, ``[T, *batch, in]`` with weights, else ``[T, *neurons]``);
- ``state``: an ``LIState`` whose ``v`` and ``i`` have exactly the neuron
  shape (possibly read-only broadcast views: never write into them);
- ``w``: the ``[out, in]`` weight matrix, or None for the feed-forward scan;
- ``p``: an ``LIParameters`` whose fields are Python floats or arrays of the
  input's library, dtype and device that broadcast to the neuron shape;
- ``dt``: a finite Python float > 0.

and must return fresh arrays of the input's library, dtype and device that
alias neither an input nor each other.
"""

from __future__ import annotations

import abc
import importlib
import importlib.metadata
import re
import sys
from typing import Any, ClassVar

from .arrays import namespace
from .types import LIParameters, LIState

DISTRIBUTION = "li-neurons"


def extra_requirements(extra: str) -> list[str]:
    """The requirements of this project's ``extra`` as its installed metadata
    lists them, nested extras (``li-neurons[torch,cupy]``) expanded; empty
    where the metadata is missing (a checkout used without installing it)."""
    try:
        requires = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    found: list[str] = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        if not re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            continue
        nested = re.fullmatch(r"\s*li[-_.]neurons\s*\[([^\]]*)\]\s*", requirement, flags=re.IGNORECASE)
        if nested is None:
            found.append(requirement.strip())
        else:
            for name in nested.group(1).split(","):
                found += extra_requirements(name.strip())
    return list(dict.fromkeys(found))


def install_command(extra: str) -> str:
    """How to install what this project's ``extra`` brings. li-neurons is not
    on a package index, so never ``pip install "li-neurons[extra]"``: the
    extra's own requirements, and the extra itself for a checkout."""
    checkout = f'pip install -e ".[{extra}]" in a checkout of li-neurons'
    requirements = extra_requirements(extra)
    if not requirements:
        return checkout
    return "pip install " + " ".join(f'"{r}"' for r in requirements) + f" (the {extra} extra; or {checkout})"


class Backend(abc.ABC):
    """A leaky-integrator implementation for one family of arrays.

    Subclasses set the class attributes and implement ``handles``,
    ``asarray``, ``to_numpy``, ``feed_forward_step`` and ``scan``; ``step``
    defaults to projecting the input through the weights and calling
    ``feed_forward_step``.
    """

    #: lowercase identifier users pass as ``backend="name"``
    name: ClassVar[str]
    #: import name of the array library this backend needs (e.g. ``"torch"``)
    library: ClassVar[str]
    #: higher wins the automatic choice among backends that handle an array
    priority: ClassVar[int] = 0
    #: the extra of this project that installs the library (``li-neurons[extra]``)
    extra: ClassVar[str | None] = None
    #: dtype names the backend computes in
    dtypes: ClassVar[tuple[str, ...]] = ("float32", "float64")
    #: device kinds the backend runs on
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: whether results carry gradients back to every array argument
    autograd: ClassVar[bool] = False
    #: a chunked (lazy) library's block libraries: the array libraries its
    #: chunks may be, each block computed by the backend chosen for its type
    block_libraries: ClassVar[tuple[str, ...]] = ()

    def availability(self) -> str | None:
        """None when the backend can run here, else the reason as a string.

        The default imports ``library`` and reports the real import error.
        """
        try:
            importlib.import_module(self.library)
        except Exception as exc:  # noqa: BLE001 - the reason is reported, not hidden
            return f"{type(exc).__name__}: {exc}"
        return None

    def version(self) -> str | None:
        """Version of the array library, when it is importable."""
        module = sys.modules.get(self.library)
        if module is None:
            try:
                module = importlib.import_module(self.library)
            except Exception:  # noqa: BLE001 - the error is the reported reason
                return None
        return getattr(module, "__version__", None)

    def install_hint(self) -> str | None:
        """The command that installs what this backend needs."""
        if self.extra is None:
            return None
        return install_command(self.extra)

    def notes(self) -> str | None:
        """Anything else ``li backends`` should tell about this available
        backend (e.g. which algorithm runs where), or None."""
        return None

    @abc.abstractmethod
    def handles(self, x: Any) -> bool:
        """Does this backend compute on arrays like ``x``? Must be cheap and
        must not import the backend's library (look in ``sys.modules``)."""

    def companions(self, x: Any) -> tuple[str, ...]:
        """The array libraries (as :func:`li_core.arrays.library_name` names
        them) whose arrays this backend accepts as the state, weights and
        parameters of a call whose input is ``x``, besides ``x``'s own
        library. None by default: one library per call. A chunked (lazy)
        library accepts small in-memory arrays beside its large chunked
        input (the contract (docs/contract.md), section 2); the core's
        checks consult this declaration. Must be cheap and import nothing."""
        return ()

    @abc.abstractmethod
    def asarray(self, array: Any, device: Any = None) -> Any:
        """A new array of this backend's library holding a NumPy array's data."""

    @abc.abstractmethod
    def to_numpy(self, x: Any) -> Any:
        """A NumPy array holding ``x``'s data (on the host)."""

    @abc.abstractmethod
    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        """One Euler step with an already weighted input current ``x``:
        ``j = i + x``, ``v' = v + dt*tau_mem_inv*((v_leak - v) + j)``,
        ``i' = j - dt*tau_syn_inv*j``; returns ``(v', LIState(v', i'))`` where
        the returned voltage and ``state.v`` are distinct arrays."""

    def step(self, x: Any, state: LIState, w: Any, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        """One Euler step with input spikes ``x`` projected as ``x @ w.T``."""
        return self.feed_forward_step(self.project(x, w), state, p, dt)

    def project(self, x: Any, w: Any) -> Any:
        """``x @ w.T`` in the Array API namespace of ``x``."""
        xp = namespace(x)
        return xp.matmul(x, xp.matrix_transpose(w))

    @abc.abstractmethod
    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        """Steps through the time-first ``xs``, carrying the state. Returns the
        voltages ``[T, *neurons]`` and the final state, or with
        ``record_states`` an ``LIState`` of the whole ``[T, *neurons]``
        sequences. With ``w`` the inputs are projected first (all ``T`` steps
        may be projected at once)."""

    def __repr__(self) -> str:
        return f"<li backend {self.name!r}>"
