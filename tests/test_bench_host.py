"""The host-overhead workload of ``li bench``: its grid, its floor, its goal
rows (each call beside its floor, with its goal), and its place in the
report (its own tables, never in the scan table or the chart)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from li_core import LIParameters, LIState, bench, li_feed_forward_step
from li_core.bench import first_call, host
from li_core.bench.raw_step import raw_step

torch = pytest.importorskip("torch")

TORCH_CALLS = [
    "li_scan forward",
    "li_scan training, parameter grads",
    "LI training step",
    "LICell training step",
    "LILinearCell training step",
]
NUMPY_CALLS = ["li_feed_forward_step", "first call: import li_core + scan"]


@pytest.fixture(scope="module")
def report():
    """One quick host run on torch and numpy (CPU), shared by the tests here."""
    return bench.run(["torch", "numpy"], ["host"], repeats=2, quick=True, devices=["cpu"], progress=False)


def _rows(report):
    return {row["backend"]: row for row in report["results"] if row["status"] == "ok"}


def test_host_rows_time_every_cell_against_the_floor(report):
    rows = _rows(report)
    assert set(rows) == {"torch", "numpy"}
    grid = bench.WORKLOADS["host"].quick().grid()
    for name, row in rows.items():
        assert [(c["steps"], c["neurons"]) for c in row["host"]] == grid
        for cell in row["host"]:
            assert cell["forward_us"] > 0 and cell["floor_forward_us"] > 0
            assert cell["forward_ratio"] == pytest.approx(cell["forward_us"] / cell["floor_forward_us"])
            assert ("training_us" in cell) == (name == "torch")  # numpy has no autograd
            assert ("params_training_us" in cell) == (name == "torch")
            if name == "torch":
                ratio = cell["params_training_us"] / cell["floor_training_us"]
                assert cell["params_training_ratio"] == pytest.approx(ratio)
    text = bench.format_results(report)
    assert len(host.host_table(report)) == 2 * len(grid)
    assert "host overhead" in text and bench.format_table(host.HOST_HEADERS, host.host_table(report)) in text
    assert bench.result_table(report)[0] == []  # not in the scan table
    assert "(nothing was timed)" not in text and "x copy:" not in text  # nor the scan table's legend


def test_a_report_with_no_timed_row_says_so(report):
    skipped = {"backend": "x", "device": None, "workload": None, "status": "skipped", "reason": "not installed"}
    text = bench.format_results({**report, "results": [skipped]})
    assert "(nothing was timed)" in text and "skipped: x: not installed" in text


def test_goal_rows_name_their_calls_floors_and_goals(report):
    rows = _rows(report)
    torch_goals, numpy_goals = rows["torch"]["host_goals"], rows["numpy"]["host_goals"]
    assert [g["call"] for g in torch_goals] == TORCH_CALLS
    assert [g["call"] for g in numpy_goals] == NUMPY_CALLS
    assert [g["beside"] for g in torch_goals] == ["forward floor"] + ["training floor"] * 4
    assert [g["shape"] for g in torch_goals] == ["T=4 B=2 N=8"] * 3 + ["B=2 N=8"] * 2
    assert all((g["goal_on"], g["goal"]) == ("ratio", 3.0) for g in torch_goals)
    step, first = numpy_goals
    assert (step["shape"], step["beside"], step["goal_on"], step["goal"]) == ("[8, 256]", "raw step", "ratio", 1.25)
    assert (first["beside"], first["goal_on"], first["goal"]) == ("LI_NUMBA=0", "difference_s", 0.3)
    assert first["repeats"] == 1  # --quick: one pair of fresh processes
    assert all(g["repeats"] == host.GOAL_ROUNDS for g in [*torch_goals, step])  # at least GOAL_ROUNDS rounds


def test_goal_fields_are_the_medians_quotient_difference_and_goal(report):
    goals = [g for row in _rows(report).values() for g in row["host_goals"]]
    assert len(goals) == len(TORCH_CALLS) + len(NUMPY_CALLS)
    for g in goals:
        assert g["time_s"] > 0 and g["floor_s"] > 0
        assert g["ratio"] == g["time_s"] / g["floor_s"]
        assert g["difference_s"] == g["time_s"] - g["floor_s"]
        assert g["met"] is (g[g["goal_on"]] <= g["goal"])


def test_goal_table_prints_every_goal_row_with_its_verdict(report):
    table = host.goal_table(report)
    goals = [(row["backend"], g) for row in report["results"] for g in row.get("host_goals", ())]
    assert len(table) == len(goals)
    for line, (backend, g) in zip(table, goals):
        assert len(line) == len(host.GOAL_HEADERS)
        assert line[0] == backend and line[2] == g["call"] and line[5] == g["beside"]
        assert line[-1] == ("yes" if g["met"] else "no")
        assert line[-2] == ("<= 3x" if g["goal"] == 3.0 else "<= 1.25x" if g["goal"] == 1.25 else "<= +0.3 s")
        assert line[7] == f"{g['ratio']:.2f}x"
    assert bench.format_table(host.GOAL_HEADERS, table) in bench.format_results(report)


@pytest.mark.parametrize(
    ("time_s", "floor_s", "goal_on", "goal", "met"),
    [
        (3.0, 1.0, "ratio", 3.0, True),  # at the goal
        (3.1, 1.0, "ratio", 3.0, False),
        (1.2, 1.0, "difference_s", 0.3, True),
        (1.4, 1.0, "difference_s", 0.3, False),
        (1.4, 1.0, "ratio", 3.0, True),  # the same times, judged by the ratio
    ],
)
def test_a_goal_is_met_by_the_quantity_it_names(time_s, floor_s, goal_on, goal, met):
    row = host.goal_row("call", "shape", "floor", time_s, floor_s, goal_on, goal, 5)
    assert row["met"] is met
    assert row["ratio"] == time_s / floor_s and row["difference_s"] == time_s - floor_s


def test_a_goal_names_a_quantity_of_the_row():
    with pytest.raises(ValueError, match="goal_on must be 'ratio' or 'difference_s', got 'time_s'"):
        host.goal_row("call", "shape", "floor", 2.0, 1.0, "time_s", 3.0, 5)


def test_goal_tables_of_a_report_without_goal_rows_are_empty():
    """A report stored before the goal rows (``docs/benchmarks.json``) still renders."""
    cell = {"steps": 1, "neurons": 8, "forward_us": 2.0, "floor_forward_us": 1.0, "forward_ratio": 2.0}
    old = {"results": [{"backend": "torch", "device": "cpu", "host": [cell]}]}
    assert host.goal_table(old) == []
    assert host.host_table(old)[0][-2:] == ["-", "-"]


def test_the_full_grid_is_the_issue_s():
    assert bench.WORKLOADS["host"].grid() == [(t, n) for t in (1, 16, 256) for n in (8, 512, 4096)]


def test_quick_runs_one_pair_of_fresh_processes_and_the_full_run_one_per_repeat():
    assert bench.WORKLOADS["host"].first_calls is None
    assert bench.WORKLOADS["host"].quick().first_calls == 1
    assert bench.WORKLOADS["small"].quick().first_calls is None


def test_the_torch_floor_is_one_op_each_way():
    x = torch.randn(3, 2, requires_grad=True)
    y = host.floor(x)(x)
    assert torch.equal(y, 2 * x) and y.grad_fn is not None
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 2.0))


def test_interleaved_medians_per_call():
    calls = []
    medians = host.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, lambda r: None, 3)
    assert set(medians) == {"a", "b"} and all(v > 0 for v in medians.values())
    assert calls.count("a") >= 3 + 2 and calls.count("b") >= 3 + 2  # warm-up, calibration, three rounds


def test_a_training_call_starts_from_no_gradient():
    """Every timed training call computes the gradients afresh (as after
    ``zero_grad()``): two calls give one call's gradients, not twice them."""
    x = torch.randn(4, 2, 8)
    leaf = x.detach().requires_grad_(True)
    p = host.parameter_tensors(x, 8)
    assert all(t.shape == (8,) and t.requires_grad for t in p)
    train = host.trained(lambda: host.li_scan(leaf, None, None, p, host.DT, backend="torch")[0], [leaf, *p])
    once = [t.grad.clone() for t in (leaf, *p) if train() is not None]
    train()
    assert all(torch.equal(t.grad, g) for t, g in zip((leaf, *p), once))
    assert all(g.abs().sum() > 0 for g in once)  # every parameter gets a gradient


def test_the_module_rows_train_per_neuron_time_constants():
    x = torch.randn(4, 2, 8)
    step = x[0].detach().requires_grad_(True)
    built = host.modules(x.detach().requires_grad_(True), step)
    assert list(built) == TORCH_CALLS[2:]
    for name, (module, leaf) in built.items():
        trainable = dict(module.named_parameters())
        assert trainable["tau_syn_inv"].shape == trainable["tau_mem_inv"].shape == (8,), name
        host.trained(lambda m=module, a=leaf: m(a)[0], [leaf, *trainable.values()])()
        # (one step's voltage does not depend on tau_syn_inv: its gradient may stay None)
        assert leaf.grad is not None and trainable["tau_mem_inv"].grad is not None, name
        assert leaf.shape == ((4, 2, 8) if name == "LI training step" else (2, 8))


@pytest.mark.parametrize("v_leak", [0.0, 0.5])
def test_the_raw_step_is_the_contract_s_step(v_leak):
    rng = np.random.default_rng(0)
    x, v, i = (rng.standard_normal((8, 256)).astype(np.float32) for _ in range(3))
    p, dt = LIParameters(v_leak=v_leak), 1e-3
    raw = raw_step(x, LIState(v, i), dt * p.tau_mem_inv, dt * p.tau_syn_inv, p.v_leak)
    v_ref, ref = li_feed_forward_step(x, LIState(v, i), p, dt, backend="numpy")
    for ours, theirs in ((raw.v, v_ref), (raw.v, ref.v), (raw.i, ref.i)):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)


def test_first_call_medians_and_difference(monkeypatch):
    times = {True: iter([9.0, 1.0, 3.0, 2.0]), False: iter([0.5, 0.25, 0.75])}
    kinds = []

    def fake(numba):
        kinds.append(numba)
        return next(times[numba])

    monkeypatch.setattr(first_call, "first_call", fake)
    measured = first_call.measure(3)
    assert kinds == [True, True, False, True, False, True, False]  # one warm-up, then interleaved pairs
    assert measured == {"default_s": 2.0, "no_numba_s": 0.5, "extra_s": 1.5, "repeats": 3}


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_first_call_repeats_must_be_a_positive_integer(repeats):
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        first_call.measure(repeats)


@pytest.mark.parametrize("numba", [True, False])
def test_a_first_call_runs_a_fresh_process_with_or_without_numba(monkeypatch, numba):
    monkeypatch.setenv("LI_NUMBA", "0" if numba else "1")  # the caller's settings are not inherited
    monkeypatch.setenv("LI_NUMBA_BACKGROUND", "0")
    seen = {}

    def fake_run(command, cwd, env, capture_output, text, check):
        seen.update(command=command, env=env)
        return subprocess.CompletedProcess(command, 0, "0.25\n", "")

    monkeypatch.setattr(first_call.subprocess, "run", fake_run)
    assert first_call.first_call(numba) == 0.25
    assert seen["command"][1:] == ["-c", first_call.SCRIPT]
    assert seen["env"].get("LI_NUMBA") == (None if numba else "0")
    assert "LI_NUMBA_BACKGROUND" not in seen["env"]
    assert seen["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(first_call.ROOT)


def test_a_failing_first_call_says_why(monkeypatch):
    def failing(command, cwd, env, capture_output, text, check):
        return subprocess.CompletedProcess(command, 1, "", "ImportError: no li_core")

    monkeypatch.setattr(first_call.subprocess, "run", failing)
    with pytest.raises(RuntimeError, match=r"first-call process failed \(1\): ImportError: no li_core"):
        first_call.first_call(True)


def test_the_first_call_script_times_import_and_a_scan():
    """The fresh process's script, run here, prints one time in seconds."""
    environment = {**os.environ, "LI_NUMBA": "0"}
    command = [sys.executable, "-c", first_call.SCRIPT]
    done = subprocess.run(command, cwd=first_call.ROOT, env=environment, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert 0 < float(done.stdout) < 60
