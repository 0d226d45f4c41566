"""Cross-backend equivalence (li_core.testing.compare) and the check/compare commands."""

import argparse
import re

import numpy as np
import pytest

from li_backends.numpy import NumPyBackend
from li_core import LIParameters, LIState
from li_core.testing import commands
from li_core.testing.compare import CASES, compare, format_table


class Sloppy(NumPyBackend):
    """Rounds its voltages to three decimals: fine by eye, wrong by the contract."""

    name = "sloppy"

    def scan(self, *args):
        vs, state = super().scan(*args)
        return np.round(vs, 3), state


class InFloat64(NumPyBackend):
    """Computes float32 inputs in float64 and rounds the results once."""

    name = "in-float64"

    def scan(self, xs, state, w, p, dt, record_states):
        def wide(a):
            return a if a is None or isinstance(a, float) else a.astype(np.float64)

        vs, final = super().scan(
            wide(xs), LIState(*map(wide, state)), wide(w), LIParameters(*map(wide, p)), dt, record_states
        )
        return vs.astype(xs.dtype), LIState(*(a.astype(xs.dtype) for a in final))


@pytest.fixture
def with_sloppy(fresh_registry, monkeypatch):
    backends = dict(fresh_registry.backends)
    backends["sloppy"] = backends["numpy"]._replace(backend=Sloppy(), provider="test")
    monkeypatch.setattr(fresh_registry, "_backends", backends)


def test_builtin_backends_agree_with_the_reference(fresh_registry):
    short = ("weighted", "slow neurons")  # (the long runs: the test below)
    rows = compare(["numpy", "array_api"], ["float32", "float64"], steps=300, cases=short)
    assert [(r.case, r.backend, r.dtype) for r in rows] == [
        (case, backend, dtype)
        for case in short
        for backend in ("numpy", "array_api")
        for dtype in ("float32", "float64")
    ]
    assert all(r.ok and r.skipped is None for r in rows)
    for row in rows:
        if row.dtype == "float64":
            assert row.ratio < 0.01, row
        elif row.case == "weighted":  # float32 really ran in float32: more error than rounding the answer once
            assert row.max_abs > 2 * row.rounding > 0, row
        # (slow neurons: a compensated float32 loop comes within 1.9x that rounding)


def test_long_runs_have_their_own_rows_and_a_shorter_run_for_the_reference(fresh_registry):
    """The long runs are rows of their own; the Array API reference, stepping
    in Python and plain in float32, runs them shorter (as in the conformance
    suite), and half precision is skipped with the reason."""
    rows = compare(["numpy", "array_api"], ["float16", "float32"], cases=["absorption"])
    assert [(r.backend, r.dtype, r.case) for r in rows] == [
        (backend, dtype, "absorption") for backend in ("numpy", "array_api") for dtype in ("float16", "float32")
    ]
    assert [r.skipped for r in rows if r.dtype == "float16"] == ["float16 cannot resolve rates below 1e-2"] * 2
    assert all(r.ok for r in rows), rows
    assert re.search(r"numpy\s+float32\s+cpu\s+absorption\s.*ok", format_table(rows))


def test_the_float32_check_sees_a_float64_computation(fresh_registry):
    for row in compare([InFloat64()], ["float32"], steps=300):
        assert row.ok and row.max_abs <= 1.01 * row.rounding, row


def test_slow_neurons_have_their_own_rows(fresh_registry):
    rows = compare(["numpy"], ["float16", "float32"], cases=["slow neurons"])
    assert [(r.dtype, r.case) for r in rows] == [("float16", "slow neurons"), ("float32", "slow neurons")]
    assert all(r.ok and 0 < r.ratio < 1 for r in rows), rows
    assert re.search(r"numpy\s+float32\s+cpu\s+slow neurons\s.*ok", format_table(rows))
    with pytest.raises(ValueError, match="cases must be among"):
        compare(["numpy"], cases=["fast neurons"])


def test_a_backend_outside_tolerance_is_flagged(with_sloppy, capsys):
    rows = compare(["sloppy"], ["float64"], steps=100)
    assert [r.case for r in rows] == list(CASES)
    assert not any(r.ok for r in rows) and all(r.ratio > 1 for r in rows)
    assert "OUTSIDE TOLERANCE" in format_table(rows)
    args = argparse.Namespace(backends=["sloppy,numpy"], dtype=["float64"], steps=100, seed=0, case=["weighted"])
    assert commands.run_compare(args) == 1
    out = capsys.readouterr().out
    assert "sloppy" in out and "numpy" in out and "slow neurons" not in out


def test_unavailable_backends_are_listed_as_skipped_with_the_reason(with_sloppy, monkeypatch):
    monkeypatch.setattr(Sloppy, "availability", lambda self: "no CUDA device")
    rows = compare(["sloppy"], ["float32"], steps=10)
    assert [(r.case, r.skipped, r.ok) for r in rows] == [(case, "no CUDA device", True) for case in CASES]
    assert "skipped: no CUDA device" in format_table(rows)


def test_check_command_reports_pass_and_failure(with_sloppy, capsys):
    parser = argparse.ArgumentParser()
    commands.add_check_arguments(parser)
    assert commands.run_check(parser.parse_args(["numpy", "--dtype", "float64", "-q"])) == 0
    assert commands.run_check(parser.parse_args(["sloppy", "--dtype", "float64", "-q"])) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAILED \S*conformance\.py::test_scan_matches_reference\[sloppy-float64-cpu\]", out), out
