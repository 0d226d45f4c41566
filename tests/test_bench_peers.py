"""li bench's peers: Norse's LI module and Norse's own step loop, timed like
li_scan (same warm-up, same repeats), computing what li_scan computes, and a
figure from fewer runs is marked as such in the table."""

from __future__ import annotations

import pytest

from li_core import LIParameters, bench, li_scan
from li_core.bench import peers, runner

torch = pytest.importorskip("torch")


def test_every_measurement_gets_li_scans_warm_up_and_repeats(monkeypatch):
    pytest.importorskip("norse", reason="Norse is not installed: no peer columns")
    calls = []

    def spy(fn, repeats=5, sync=None, warmup=1, max_seconds=None):
        calls.append((warmup, repeats))
        return bench.measure(fn, repeats, sync, warmup, max_seconds)

    monkeypatch.setattr(runner, "measure", spy)
    monkeypatch.setattr(peers, "measure", spy)
    report = bench.run(
        ["torch"], ["training"], repeats=4, quick=True, devices=["cpu"], progress=False, max_seconds=None
    )
    (row,) = report["results"]
    assert len(calls) == 5, calls  # li_scan, copy, step loop, Norse's module, Norse's step loop
    assert set(calls) == {(1, 4)}, calls
    assert row["repeats"] == row["loop_repeats"] == row["norse_repeats"] == row["norse_step_repeats"] == 4
    for prefix in ("norse", "norse_step"):
        assert row[f"speedup_over_{prefix}"] == pytest.approx(row[f"{prefix}_median_s"] / row["median_s"])
    table, _ = bench.result_table(report)
    assert table[0][bench.RESULT_HEADERS.index("vs step")].endswith("x")


def test_norse_step_loop_and_module_compute_li_scans_voltages():
    pytest.importorskip("norse", reason="Norse is not installed")
    p = LIParameters(tau_syn_inv=torch.tensor(150.0), tau_mem_inv=torch.tensor(80.0))
    xs = torch.randn(30, 2, 5, generator=torch.Generator().manual_seed(0))
    expected = li_scan(xs, None, None, p, bench.DT)[0]
    forwards = peers.norse_forwards(p, "cpu")
    assert set(forwards) == set(peers.PEERS)
    for prefix, forward in forwards.items():
        torch.testing.assert_close(forward(xs), expected, msg=lambda m, prefix=prefix: f"{prefix}: {m}")


def _row(**fields):
    row = {"backend": "torch", "device": "cpu", "workload": "training", "shape": "T=5", "status": "ok"}
    timings = {"": 0.1, "copy_": 0.05, "loop_": 0.4, "norse_": 40.0, "norse_step_": 0.5}
    for prefix, seconds in timings.items():
        row.update({f"{prefix}median_s": seconds, f"{prefix}q25_s": seconds, f"{prefix}q75_s": seconds})
    row.update(repeats=5, loop_repeats=5, norse_repeats=1, norse_step_repeats=5, ratio_to_copy=2.0)
    row.update(speedup_over_loop=4.0, speedup_over_norse=400.0, speedup_over_norse_step=5.0, **fields)
    return row


def test_a_figure_from_fewer_runs_than_li_scans_says_so():
    (cells,), _ = bench.result_table({"results": [_row()]})
    column = dict(zip(bench.RESULT_HEADERS, cells, strict=True))
    assert column["norse"] == "40 s (1 run)"
    assert column["norse step"] == "500 ms"  # as many runs as li_scan: no mark
    assert column["loop"] == "400 ms"
    assert column["vs norse"] == "400x" and column["vs step"] == "5x"


def test_a_peer_that_failed_is_a_note_naming_it():
    row = _row(norse_step_reason="RuntimeError: boom")
    del row["norse_step_median_s"]
    (cells,), notes = bench.result_table({"results": [row]})
    assert cells[bench.RESULT_HEADERS.index("norse step")] == "-"
    assert notes == ["norse_step not timed: torch cpu training: Norse's li_feed_forward_step in a loop over "
                     "x.unbind(0): RuntimeError: boom"]  # fmt: skip
