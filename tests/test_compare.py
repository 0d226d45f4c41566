"""Cross-backend equivalence (li_core.testing.compare) and the check/compare commands."""

import argparse

import numpy as np
import pytest

from li_backends.numpy import NumPyBackend
from li_core.testing import commands
from li_core.testing.compare import compare, format_table


class Sloppy(NumPyBackend):
    """Rounds its voltages to three decimals: fine by eye, wrong by the SPEC."""

    name = "sloppy"

    def scan(self, *args):
        vs, state = super().scan(*args)
        return np.round(vs, 3), state


@pytest.fixture
def with_sloppy(fresh_registry, monkeypatch):
    backends = dict(fresh_registry.backends)
    backends["sloppy"] = backends["numpy"]._replace(backend=Sloppy(), provider="test")
    monkeypatch.setattr(fresh_registry, "_backends", backends)


def test_builtin_backends_agree_with_the_reference(fresh_registry):
    rows = compare(["numpy", "array_api"], ["float32", "float64"], steps=300)
    assert [(r.backend, r.dtype) for r in rows] == [
        ("numpy", "float32"),
        ("numpy", "float64"),
        ("array_api", "float32"),
        ("array_api", "float64"),
    ]
    assert all(r.ok and r.skipped is None for r in rows)
    numpy64 = rows[1]
    assert 0 <= numpy64.max_abs < 1e-12 and numpy64.ratio < 0.01
    assert rows[0].max_abs > numpy64.max_abs  # float32 really ran in float32


def test_a_backend_outside_tolerance_is_flagged(with_sloppy, capsys):
    rows = compare(["sloppy"], ["float64"], steps=100)
    assert not rows[0].ok and rows[0].ratio > 1
    assert "OUTSIDE TOLERANCE" in format_table(rows)
    args = argparse.Namespace(backends=["sloppy,numpy"], dtype=["float64"], steps=100, seed=0)
    assert commands.run_compare(args) == 1
    out = capsys.readouterr().out
    assert "sloppy" in out and "numpy" in out


def test_unavailable_backends_are_listed_as_skipped_with_the_reason(with_sloppy, monkeypatch):
    monkeypatch.setattr(Sloppy, "availability", lambda self: "no CUDA device")
    rows = compare(["sloppy"], ["float32"], steps=10)
    assert rows[0].skipped == "no CUDA device" and rows[0].ok
    assert "skipped: no CUDA device" in format_table(rows)


def test_check_command_reports_pass_and_failure(with_sloppy, capsys):
    parser = argparse.ArgumentParser()
    commands.add_check_arguments(parser)
    assert commands.run_check(parser.parse_args(["numpy", "--dtype", "float64", "-q"])) == 0
    assert commands.run_check(parser.parse_args(["sloppy", "--dtype", "float64", "-q"])) == 1
    out = capsys.readouterr().out
    assert "FAILED li_core/testing/conformance.py::test_scan_matches_reference[sloppy-float64-cpu]" in out
