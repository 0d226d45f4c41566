"""``scripts/gpu-check``: the one command for a GPU machine.

Here (normally without a GPU) it must exit 77 with one line saying why. Its
parts are checked against the real formats they read: ``li compare``'s table
(made by ``li_core.testing.compare.format_table``), pytest's junit report,
the benchmark's result rows (made by ``benchmarks/bench_gpu.py``), and a real
``li check`` run as the script runs it where the project is not installed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from li_core.testing.compare import Comparison, format_table

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu-check"


def load(name: str, path: Path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_check():
    return load("gpu_check", SCRIPT)


@pytest.fixture(scope="module")
def bench_gpu():
    return load("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")


def test_the_script_is_executable_python():
    assert SCRIPT.stat().st_mode & 0o111, "scripts/gpu-check is not executable"
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_without_a_gpu_it_exits_77_with_one_line(gpu_check):
    if gpu_check.no_gpu_reason() is None:
        pytest.skip("this machine has a CUDA GPU: gpu-check would run every step")
    done = subprocess.run([str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 77, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: skipped: no CUDA GPU ("), done.stdout
    assert done.stderr == ""


def comparison(backend: str, dtype: str, device: str, ratio: float, skipped: str | None = None) -> Comparison:
    """A row of ``li compare`` (fields it may not have are left out)."""
    values = {
        "backend": backend, "dtype": dtype, "device": device, "case": "weighted", "max_abs": ratio * 1e-6,
        "max_rel": ratio * 1e-7, "ratio": ratio, "ok": ratio <= 1.0, "skipped": skipped,
    }  # fmt: skip
    return Comparison(**{name: value for name, value in values.items() if name in Comparison._fields})


def test_cuda_rows_of_the_compare_table(gpu_check):
    rows = [
        comparison("cupy", "float32", "cuda", 0.02),
        comparison("torch", "float64", "cpu", 0.01),
        comparison("torch", "float32", "cuda:0", 10.0),
        comparison("cupy", "float16", "cuda", np.nan, "no CUDA device"),
    ]
    found, bad = gpu_check.cuda_rows(format_table(rows))
    assert [line.split()[:3] for line in found] == [
        ["cupy", "float32", "cuda"],
        ["torch", "float32", "cuda:0"],
        ["cupy", "float16", "cuda"],
    ]
    assert [line.split()[:2] for line in bad] == [["torch", "float32"], ["cupy", "float16"]]


def test_gpu_tests_skipped_in_a_junit_report(gpu_check):
    report = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
    <testcase classname="tests.test_cupy_backend" name="test_scan_matches_reference_on_the_gpu[float32]">
      <skipped type="pytest.skip" message="the cupy backend cannot run here: no CUDA device"/></testcase>
    <testcase classname="tests.test_torch_cuda_bridge" name="test_runs_on_the_tensors_own_device">
      <skipped type="pytest.skip" message="needs two CUDA devices"/></testcase>
    <testcase classname="tests.test_cupy_kernels" name="test_every_instantiation_compiles_with_nvcc[sm_90]">
      <skipped type="pytest.skip" message="nvcc is not on PATH: cannot compile the CUDA kernels"/></testcase>
    <testcase classname="tests.test_torch_cuda_bridge" name="test_scan_matches_the_euler_loop"/>
    </testsuite></testsuites>"""
    assert gpu_check.gpu_skips(report) == [
        "tests.test_cupy_backend::test_scan_matches_reference_on_the_gpu[float32]: "
        "the cupy backend cannot run here: no CUDA device"
    ]


def test_speed_lines_from_benchmark_rows(gpu_check, bench_gpu):
    forward = bench_gpu.judged(bench_gpu.row("forward T=1000", "cupy", "li_scan", 1.2, "copy", 1.0), "forward")
    slow = bench_gpu.row("training", "torch", "li_scan", 4.0, "x.clone()", 1.0, path="torch loop: no CUDA kernel")
    bandwidth = bench_gpu.judged(bench_gpu.row("forward 1M", "torch", "li_scan", 2.0, "x.clone()", 1.0), "bandwidth")
    speedup = bench_gpu.judged(bench_gpu.row("training", "torch", "li_scan", 0.5, "torch loop", 30.0), "speedup")
    results = [
        forward,
        bench_gpu.judged(slow, "training"),
        bandwidth,
        speedup,
        {"library": "cupy", "skipped": "no GPU"},
    ]
    lines, met, missed = gpu_check.speed_lines(json.loads(json.dumps(results)))
    assert (met, missed) == (2, 2)
    assert lines == [
        "cupy forward T=1000: 1.20x (target <= 1.3x copy) met",
        "torch training: 4.00x (target <= 3.0x x.clone()) MISSED [torch loop: no CUDA kernel]",
        "torch forward 1M: 50% of copy bandwidth (target >= 80% of copy bandwidth) MISSED",
        "torch training: 60.0x faster (target >= 50x faster than torch loop) met",
        "cupy: skipped: no GPU",
    ]


def test_speed_lines_separate_the_device_from_the_host(gpu_check, bench_gpu):
    """With the device timed alone (and the host's time in the call), each
    line says whether the kernels alone meet the target the wall clock misses."""
    figures = {"ms": 4.0, "host_ms": 3.5, "device_ms": 1.5}
    baseline = {"ms": 1.0, "host_ms": 0.01, "device_ms": 0.9}
    training = bench_gpu.measured_row("training", "torch", "li_scan", figures, "x.clone()", baseline)
    assert training["device_ratio"] == pytest.approx(1.5 / 0.9)
    forward = bench_gpu.measured_row("forward 1M", "cupy", "li_scan", figures, "copy", {**baseline, "ms": 3.0})
    results = [bench_gpu.judged(training, "training"), bench_gpu.judged(forward, "bandwidth")]
    lines, met, missed = gpu_check.speed_lines(json.loads(json.dumps(results)))
    assert (met, missed) == (0, 2)
    assert lines == [
        "torch training: 4.00x (target <= 3.0x x.clone()) MISSED; device alone 1.67x (met), host 3.500 ms per call",
        "cupy forward 1M: 75% of copy bandwidth (target >= 80% of copy bandwidth) MISSED; "
        "device alone 60% of copy bandwidth (missed), host 3.500 ms per call",
    ]
    table = bench_gpu.format_results(results)
    assert "device 1.500 ms (1.67x)  host 3.500 ms" in table and "75% of copy bandwidth" in table


class FakeEvent:
    """A CUDA event stand-in that reads a shared clock when recorded."""

    clock: ClassVar[list[float]] = [0.0]

    def record(self):
        self.at = self.clock[0]

    def synchronize(self):
        pass

    def elapsed_time(self, stop):
        return stop.at - self.at


def test_timings_are_medians_of_interleaved_runs_and_the_busy_work_comes_first(bench_gpu):
    """Each candidate runs once to warm up, then round by round; work queued
    to keep the device busy runs before each start event, outside the timing."""
    order = []

    def candidate(name, duration):
        def run():
            order.append(name)
            FakeEvent.clock[0] += duration

        return run

    def busy():
        order.append("busy")
        FakeEvent.clock[0] += 100.0

    candidates = {"a": candidate("a", 1.0), "b": candidate("b", 2.0)}
    assert bench_gpu.median_ms(candidates, FakeEvent, 3) == {"a": 1.0, "b": 2.0}
    assert order == ["a", "b"] * 4
    order.clear()
    assert bench_gpu._timed(candidates, FakeEvent, 2, busy=busy) == {"a": 1.0, "b": 2.0}
    assert order == ["a", "b", "busy", "a", "busy", "b", "busy", "a", "busy", "b"]


def test_without_a_cuda_torch_the_device_alone_is_not_timed(bench_gpu):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert bench_gpu.device_ms({"a": lambda: None}, FakeEvent, 3, {"a": 1.0}) == {"a": None}


@pytest.mark.parametrize("installed", [True, False])
def test_the_pytest_plugin_is_named_only_where_it_is_not_installed(gpu_check, monkeypatch, installed):
    monkeypatch.setattr(gpu_check, "plugin_installed", lambda: installed)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = gpu_check.environment()
    assert env["PYTHONPATH"].split(":") == [str(ROOT), "/elsewhere"]
    assert ("-p li_core.testing.pytest_plugin" in env.get("PYTEST_ADDOPTS", "")) is not installed


def test_li_check_runs_as_on_a_machine_without_the_project_installed(gpu_check, monkeypatch):
    """Entry points switched off (as where li-neurons is not installed): the
    script names the conformance plugin itself and ``li check`` passes."""
    monkeypatch.setattr(gpu_check, "plugin_installed", lambda: False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    step = gpu_check.step_check(["numpy", "--dtype", "float64"], timeout=120)
    assert step.ok, step.details
    assert "passed" in step.summary


@pytest.mark.parametrize("failing", [None, "li check cupy"])
def test_every_step_is_reported_and_any_failure_exits_1(gpu_check, monkeypatch, capsys, failing):
    def step(name):
        return lambda *args, **kwargs: gpu_check.Step(name, name != failing, "summary", 1.0)

    monkeypatch.setattr(gpu_check, "no_gpu_reason", lambda: None)
    monkeypatch.setattr(gpu_check, "describe_machine", lambda: "a test machine")
    monkeypatch.setattr(gpu_check, "step_import", step("import the project"))
    monkeypatch.setattr(gpu_check, "step_tests", step("CUDA tests"))
    monkeypatch.setattr(
        gpu_check, "step_check", lambda arguments, limit: step("li check " + " ".join(arguments))(arguments, limit)
    )
    monkeypatch.setattr(gpu_check, "step_dask_cupy", step("dask time chunks (CuPy)"))
    monkeypatch.setattr(gpu_check, "step_compare", step("li compare (CUDA rows)"))
    monkeypatch.setattr(
        gpu_check, "step_bench", lambda *args: (gpu_check.Step("GPU benchmarks", True, "speed targets", 1.0), 3, 1)
    )
    status = gpu_check.main([])
    output = capsys.readouterr().out
    assert output.count("[pass]") + output.count("[FAIL]") == 8, output
    assert "li check dask --device cuda" in output and "dask time chunks (CuPy)" in output
    assert status == (1 if failing else 0)
    expected = f"1 of 7 steps failed ({failing})" if failing else "every step passed"
    assert output.rstrip().endswith(f"gpu-check: {expected}; speed targets 3 met, 1 missed"), output


def test_a_check_where_everything_is_skipped_fails(gpu_check, monkeypatch):
    """On a GPU machine, ``li check cupy`` skipping every check (the backend
    could not run) is a failure, not a pass."""
    output = "sss [100%]\nSKIPPED [72] li_core/testing/conformance.py: no CUDA device\n72 skipped in 1.30s\n"
    monkeypatch.setattr(gpu_check, "run", lambda command, timeout: (0, output))
    step = gpu_check.step_check(["cupy"], timeout=60)
    assert not step.ok and step.summary == "no check ran (72 skipped in 1.30s)"


def test_the_project_imports_from_the_checkout(gpu_check):
    step = gpu_check.step_import(60)
    assert step.ok, step.summary


def test_without_the_projects_dependencies_nothing_else_runs(gpu_check, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "no_gpu_reason", lambda: None)
    monkeypatch.setattr(gpu_check, "describe_machine", lambda: "a test machine")
    missing = (1, "Traceback ...\nModuleNotFoundError: No module named 'array_api_compat'\n")
    monkeypatch.setattr(gpu_check, "run", lambda command, timeout: missing)
    assert gpu_check.main([]) == 1
    output = capsys.readouterr().out
    assert "[FAIL] import the project" in output and "No module named 'array_api_compat'" in output
    assert output.rstrip().endswith("gpu-check: the project cannot be imported here, so no step ran")


def test_the_dask_cupy_probe_runs_on_numpy_blocks(gpu_check, monkeypatch, tmp_path):
    """The Dask step's script, with NumPy blocks standing in for CuPy's: the
    time axis is cut into chunks and the numbers match NumPy's. It runs on
    this interpreter, whatever ``python`` on PATH is (here: one that fails)."""
    (tmp_path / "python").write_text("#!/bin/sh\necho not this python; exit 3\n")
    (tmp_path / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    probe = gpu_check.DASK_CUPY_PROBE.replace('device="cuda"', 'device="cpu"')
    probe = probe.replace("import cupy\n", "import numpy as cupy\ncupy.asnumpy = cupy.asarray\n")
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "time chunks of CuPy blocks" in done.stdout


def test_the_peers_run_where_installed(bench_gpu):
    """The peers' forward functions (Norse, SpikingJelly) give one voltage
    per input on the CPU too, forward and backward, or a reason."""
    torch = pytest.importorskip("torch")
    peers, skipped = bench_gpu.peer_modules(torch, "cpu")
    assert all("skipped" in entry for entry in skipped)
    x = torch.randn(6, 2, 8, requires_grad=True)
    for name, forward in peers.items():
        voltages = forward(x)
        assert voltages.shape == x.shape, name
        voltages.sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, name
        x.grad = None


def test_no_test_runs_python_from_path():
    """A test that starts ``python`` from PATH runs another interpreter
    where the suite's was called by its path (``.venv/bin/python -m
    pytest``, no activation): every test starts ``sys.executable``."""
    started = re.compile(r"""\[\s*["']python3?["']\s*,""")
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if started.search(line)
    ]
    assert offenders == []
