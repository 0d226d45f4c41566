"""The contract (docs/contract.md), section 3: which backend a call uses, and why."""

import importlib.metadata
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

import li_core
from li_backends.numpy import NumPyBackend
from li_core import BackendNotFoundError, BackendUnavailableError, li_feed_forward_step, li_scan, use_backend
from li_core.backend import install_command


class Recording(NumPyBackend):
    """A NumPy backend that records that it ran."""

    def __init__(self, name, priority=10, reason=None):
        self.name, self.priority, self.reason, self.calls = name, priority, reason, 0

    def availability(self):
        return self.reason

    def feed_forward_step(self, *args):
        self.calls += 1
        return super().feed_forward_step(*args)

    def scan(self, *args):
        self.calls += 1
        return super().scan(*args)


@pytest.fixture
def extra_backends(fresh_registry, monkeypatch):
    """Two extra numpy-handling backends: 'high' (priority 50) and 'broken' (unavailable)."""
    high, broken, low = (
        Recording("high", 50),
        Recording("broken", 99, "ImportError: no module named 'x'"),
        Recording("low", 1),
    )
    backends = dict(fresh_registry.backends)
    for b in (high, broken, low):
        backends[b.name] = backends["numpy"]._replace(backend=b, provider=f"test {b.name}")
    monkeypatch.setattr(fresh_registry, "_backends", backends)
    return high, broken, low


X = np.ones((3, 4), dtype=np.float32)


def test_automatic_choice_is_the_highest_priority_available_backend(extra_backends):
    high, broken, low = extra_backends
    li_scan(X)
    assert (high.calls, broken.calls, low.calls) == (1, 0, 0)


def test_automatic_choice_for_numpy_without_extras(fresh_registry, caplog):
    with caplog.at_level(logging.DEBUG, logger="li_core"):
        li_scan(X)
    assert "li_scan: backend 'numpy' (automatic choice for numpy.ndarray)" in caplog.text


def test_array_api_libraries_fall_back_to_the_reference(fresh_registry, caplog):
    import array_api_strict as xp

    with caplog.at_level(logging.DEBUG, logger="li_core"):
        vs, _ = li_scan(xp.ones((2, 3)))
    assert "backend 'array_api'" in caplog.text
    assert type(vs).__module__.startswith("array_api_strict")


def test_explicit_backend_wins_over_context_and_environment(extra_backends, monkeypatch):
    high, _broken, low = extra_backends
    monkeypatch.setenv("LI_BACKEND", "high")
    with use_backend("high"):
        li_scan(X, backend="low")
    assert (high.calls, low.calls) == (0, 1)
    li_scan(X, backend=low)  # a backend object works too
    assert low.calls == 2


def test_context_wins_over_environment_and_is_restored(extra_backends, monkeypatch):
    high, _broken, low = extra_backends
    monkeypatch.setenv("LI_BACKEND", "high")
    with use_backend("low") as chosen:
        assert chosen is low
        li_scan(X)
    li_scan(X)
    assert (low.calls, high.calls) == (1, 1)


def test_context_is_local_to_its_thread(extra_backends):
    high, _broken, low = extra_backends
    seen = []
    with use_backend("low"):
        thread = threading.Thread(target=lambda: seen.append(li_feed_forward_step(X, None)))
        thread.start()
        thread.join()
    assert seen and (low.calls, high.calls) == (0, 1)


def test_environment_takes_the_first_available_backend_that_handles_the_arrays(extra_backends, monkeypatch, caplog):
    _high, _broken, low = extra_backends
    monkeypatch.setenv("LI_BACKEND", "broken, array_api ,low")
    import array_api_strict as xp

    with caplog.at_level(logging.DEBUG, logger="li_core"):
        li_scan(X)  # broken is unavailable: array_api handles numpy arrays too and comes next
    assert "backend 'array_api' (LI_BACKEND=broken, array_api ,low)" in caplog.text
    monkeypatch.setenv("LI_BACKEND", "broken,low")
    li_scan(X)
    assert low.calls == 1
    monkeypatch.setenv("LI_BACKEND", "low")
    li_scan(xp.ones((2, 2)))  # low does not handle strict arrays: falls to automatic
    assert low.calls == 1


def test_environment_warns_about_unknown_names_and_falls_back(extra_backends, monkeypatch):
    high, *_ = extra_backends
    monkeypatch.setenv("LI_BACKEND", "not-a-backend-name")
    with pytest.warns(UserWarning, match="not-a-backend-name"):
        li_scan(X)
    assert high.calls == 1


def test_explicit_unknown_backend_lists_registered_names(fresh_registry):
    with pytest.raises(BackendNotFoundError, match=r"'nope'; registered backends: array_api, .*numpy") as info:
        li_scan(X, backend="nope")
    assert isinstance(info.value, LookupError)
    with pytest.raises(BackendNotFoundError), use_backend("nope"):
        pass


def test_explicit_unavailable_backend_never_falls_back(extra_backends):
    with pytest.raises(BackendUnavailableError, match="no module named 'x'") as info:
        li_scan(X, backend="broken")
    assert isinstance(info.value, RuntimeError)
    with use_backend("broken"), pytest.raises(BackendUnavailableError):
        li_scan(X)


def _declared_extra(name: str) -> list[str]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    return pyproject["project"]["optional-dependencies"][name]


def test_unavailable_reason_carries_the_install_command(extra_backends, monkeypatch):
    """li-neurons is on no package index: the hint names the extra's own
    requirements (as declared in pyproject.toml) and the checkout command."""
    _, broken, _ = extra_backends
    monkeypatch.setattr(type(broken), "extra", "torch", raising=False)
    with pytest.raises(BackendUnavailableError) as info:
        li_scan(X, backend="broken")
    message = str(info.value)
    for requirement in _declared_extra("torch"):
        assert f'"{requirement}"' in message
    assert 'pip install -e ".[torch]"' in message and "li-neurons[" not in message


def test_nested_extras_are_expanded_in_the_install_command():
    command = install_command("cuda")  # cuda = li-neurons[torch,cupy]
    for requirement in _declared_extra("torch") + _declared_extra("cupy"):
        assert f'"{requirement}"' in command


def test_install_command_without_metadata_is_the_checkout_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", missing)
    assert install_command("torch") == 'pip install -e ".[torch]" in a checkout of li-neurons'


def test_explicit_backend_that_does_not_handle_the_arrays_raises(fresh_registry):
    import array_api_strict as xp

    with pytest.raises(TypeError, match=r"backend 'numpy' \(chosen by backend=\) does not handle inputs"):
        li_scan(xp.ones((2, 2)), backend="numpy")


def test_non_array_inputs_have_no_backend(fresh_registry):
    with pytest.raises(TypeError, match="inputs must be an array"):
        li_scan(((1.0,),))


def test_get_backend_and_list_backends(fresh_registry):
    numpy_backend = li_core.get_backend("numpy")
    assert numpy_backend.name == "numpy" and numpy_backend.handles(X)
    rows = {row.name: row for row in li_core.list_backends()}
    assert rows["numpy"].available and rows["numpy"].reason is None
    assert rows["numpy"].version == np.__version__
    assert rows["numpy"].distribution == "li-neurons"
    assert "float32" in rows["numpy"].dtypes and rows["numpy"].devices == ("cpu",)
    assert rows["array_api"].autograd is False


def test_environment_keeps_a_chunked_array_on_a_chunked_backend(monkeypatch, caplog):
    """LI_BACKEND=array_api chooses the backend of a Dask array's blocks,
    not a one-node-per-step reference graph for the whole Dask array."""
    dask_array = pytest.importorskip("dask.array")
    monkeypatch.setenv("LI_BACKEND", "array_api,numpy")
    with caplog.at_level(logging.DEBUG, logger="li_core"):
        voltages, _ = li_scan(dask_array.ones((100, 4), chunks=(50, 2)))
    chosen = [record.getMessage() for record in caplog.records]
    assert chosen[0].startswith("li_scan: backend 'dask'"), chosen
    assert "dask blocks: backend 'array_api' (LI_BACKEND=array_api,numpy)" in chosen, chosen
    assert len(voltages.__dask_graph__()) < 100  # (the reference graph had 1812 tasks for T=100)
    monkeypatch.setenv("LI_BACKEND", "dask")
    with caplog.at_level(logging.DEBUG, logger="li_core"):
        li_scan(np.ones((3, 2)))  # an in-memory array: dask does not handle it, the automatic choice does
    assert "li_scan: backend 'numpy' (automatic choice for numpy.ndarray)" in caplog.records[-1].getMessage()
