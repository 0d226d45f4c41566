"""The host-overhead workload of ``li bench``: its grid, its floor, and its
place in the report (its own table, never in the scan table or the chart)."""

import pytest

from li_core import bench
from li_core.bench import host

torch = pytest.importorskip("torch")


def test_host_rows_time_every_cell_against_the_floor():
    report = bench.run(["torch", "numpy"], ["host"], repeats=2, quick=True, devices=["cpu"], progress=False)
    rows = {row["backend"]: row for row in report["results"] if row["status"] == "ok"}
    grid = bench.WORKLOADS["host"].quick().grid()
    for name, row in rows.items():
        assert [(c["steps"], c["neurons"]) for c in row["host"]] == grid
        for cell in row["host"]:
            assert cell["forward_us"] > 0 and cell["floor_forward_us"] > 0
            assert cell["forward_ratio"] == pytest.approx(cell["forward_us"] / cell["floor_forward_us"])
            assert ("training_us" in cell) == (name == "torch")  # numpy has no autograd
    text = bench.format_results(report)
    assert "host overhead" in text and text.count("torch    cpu") == len(grid)
    assert bench.result_table(report)[0] == []  # not in the scan table


def test_the_full_grid_is_the_issue_s():
    assert bench.WORKLOADS["host"].grid() == [(t, n) for t in (1, 16, 256) for n in (8, 512, 4096)]


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
