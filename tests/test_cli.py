"""The ``li`` command line, the demo and the benchmark harness."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import li_core
from li_core import bench, cli, demo
from li_core.backend import install_command
from li_core.errors import StoreChangedError
from li_core.testing import compare as compare_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUBCOMMANDS = ("backends", "demo", "bench", "check", "compare")


def run_li(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401 - imported only to check that it is installed
    except ImportError:
        return False
    return True


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 5000, f"{path} is suspiciously small ({len(data)} bytes)"


# -- li backends -----------------------------------------------------------------------------


def test_backends_lists_every_registered_backend(capsys):
    status, out, _ = run_li(capsys, "backends")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["name", "available", "version"]
    for info in li_core.list_backends():
        row = next((line for line in lines if line.split()[:1] == [info.name]), None)
        assert row is not None, f"no row for {info.name}:\n{out}"
        assert info.distribution in row
        assert ", ".join(info.dtypes) in row
        assert ", ".join(info.devices) in row
        if info.available:
            assert row.split()[1] == "yes"
            assert info.version is None or info.version in row
        else:
            assert row.split()[1] == "no"
            assert f"{info.name} is unavailable: {info.reason}" in out


def test_backends_json_matches_list_backends(capsys):
    status, out, _ = run_li(capsys, "backends", "--json")
    assert status == 0
    records = json.loads(out)
    expected = [info._asdict() for info in li_core.list_backends()]
    assert [r["name"] for r in records] == [e["name"] for e in expected]
    for record, info in zip(records, expected):
        assert record["available"] == info["available"]
        assert record["reason"] == info["reason"]
        assert tuple(record["dtypes"]) == info["dtypes"]
        assert record["autograd"] == info["autograd"]


# -- li demo ---------------------------------------------------------------------------------


def summary_numbers(out: str) -> dict[str, float]:
    match = re.search(r"voltage: mean (\S+)\s+min (\S+)\s+max (\S+)", out)
    assert match, f"no voltage summary in:\n{out}"
    return dict(zip(("mean", "min", "max"), map(float, match.groups())))


def expected_numbers(neurons: int, inputs: int, seed: int) -> dict[str, float]:
    """The demo recomputed from its documented recipe, with li_scan directly."""
    rng = np.random.default_rng(seed)
    spikes = (rng.random((1000, inputs)) < 20.0 * 1e-3).astype(np.float32)
    weights = rng.normal(0.5, 1.0, size=(neurons, inputs)).astype(np.float32)
    voltages, _ = li_core.li_scan(spikes, None, weights, dt=1e-3)
    assert voltages.shape == (1000, neurons)
    return {"mean": float(voltages.mean(dtype=np.float64)), "min": float(voltages.min()), "max": float(voltages.max())}


def test_demo_summary_equals_li_scan_and_writes_png(capsys, tmp_path):
    image = tmp_path / "demo.png"
    status, out, err = run_li(capsys, "demo", "-o", str(image), "--neurons", "64", "--inputs", "30", "--seed", "7")
    assert status == 0, err
    assert "backend: numpy" in out
    assert "spikes [1000, 30]" in out and "weights [64, 30]" in out and "voltages [1000, 64]" in out
    got, want = summary_numbers(out), expected_numbers(64, 30, 7)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-6), key
    assert want["max"] > want["min"]  # the inputs really drive the neurons
    if has_matplotlib():
        assert f"wrote {image}" in out
        assert_png(image)
    else:
        assert install_command("plot") in err
        assert not image.exists()


def test_demo_different_seeds_give_different_numbers(capsys, tmp_path):
    _, first, _ = run_li(capsys, "demo", "-o", str(tmp_path / "a.png"), "--neurons", "16", "--seed", "1")
    _, second, _ = run_li(capsys, "demo", "-o", str(tmp_path / "b.png"), "--neurons", "16", "--seed", "2")
    assert summary_numbers(first) != summary_numbers(second)


def test_demo_without_matplotlib_names_the_extra(capsys, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    image = tmp_path / "demo.png"
    status, out, err = run_li(capsys, "demo", "-o", str(image), "--neurons", "8")
    assert status == 0
    assert "voltage: mean" in out  # the summary is still printed
    assert "matplotlib is not installed" in err
    assert install_command("plot") in err
    assert not image.exists()


def test_demo_on_another_backend_gives_the_same_numbers(capsys, tmp_path):
    """The inputs go through the backend's asarray and back through to_numpy."""
    image = str(tmp_path / "x.png")
    status, out, err = run_li(capsys, "demo", "--backend", "array_api", "-o", image, "--neurons", "16")
    assert status == 0, err
    assert "backend: array_api" in out
    got, want = summary_numbers(out), expected_numbers(16, 100, 0)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-5), key


def test_demo_simulate_returns_numpy_arrays_of_the_backend_result():
    result = demo.simulate("numpy", neurons=12, inputs=5, steps=40, seed=4)
    spikes, weights = demo.make_inputs(12, 5, 40, seed=4)
    np.testing.assert_array_equal(result.spikes, spikes)
    np.testing.assert_array_equal(result.voltages, li_core.li_scan(spikes, None, weights)[0])
    assert result.seconds > 0 and result.first_seconds > 0


def test_demo_unknown_backend_is_a_clear_error(capsys):
    status, _, err = run_li(capsys, "demo", "--backend", "no-such-backend")
    assert status == 2
    assert "no backend named 'no-such-backend'" in err
    assert "numpy" in err  # the registered names are listed


# -- li bench --------------------------------------------------------------------------------


def test_bench_quick_json_reports_positive_times_and_consistent_ratios(capsys):
    status, out, err = run_li(capsys, "bench", "--quick", "--json", "--backends", "numpy")
    assert status == 0, err
    report = json.loads(out)
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["python"]
    assert report["settings"]["quick"] is True and report["settings"]["dtype"] == "float32"
    rows = {row["workload"]: row for row in report["results"]}
    assert set(rows) == set(bench.WORKLOADS)
    assert rows["training"]["status"] == "skipped"  # numpy declares no autograd
    assert "autograd" in rows["training"]["reason"]
    for name in ("feedforward", "small", "weighted"):
        row = rows[name]
        assert row["status"] == "ok", row
        assert row["backend"] == "numpy" and row["device"] == "cpu"
        for field in ("median_s", "q25_s", "q75_s", "copy_median_s", "loop_median_s"):
            assert row[field] > 0, field
        assert row["q25_s"] <= row["median_s"] <= row["q75_s"]
        assert row["ratio_to_copy"] == pytest.approx(row["median_s"] / row["copy_median_s"])
        assert row["ratio_to_loop"] == pytest.approx(row["median_s"] / row["loop_median_s"])
        assert row["speedup_over_loop"] == pytest.approx(1 / row["ratio_to_loop"])
        assert row["shape"] == bench.WORKLOADS[name].quick().shape
    assert "feedforward" in err  # the progress bar is on stderr, not in the JSON


def test_bench_table_and_plot(capsys, tmp_path):
    chart = tmp_path / "bench.png"
    status, out, err = run_li(
        capsys,
        "bench",
        "--quick",
        "-q",
        "--backends",
        "numpy",
        "--workloads",
        "small",
        "--repeats",
        "1",
        "--plot",
        str(chart),
    )
    assert status == 0, err
    assert "numpy" in out and "small" in out and "speedup" in out
    assert "1/1" not in err  # -q: no progress bar
    if has_matplotlib():
        assert_png(chart)
    else:
        assert install_command("plot") in err


def an_autograd_backend() -> str:
    """torch when it is available, else any available autograd backend."""
    names = [info.name for info in li_core.list_backends() if info.available and info.autograd]
    if not names:
        pytest.skip("no available backend declares autograd")
    return "torch" if "torch" in names else names[0]


def test_bench_training_runs_on_an_autograd_backend():
    name = an_autograd_backend()
    report = bench.run([name], ["training"], repeats=1, quick=True, devices=["cpu"], progress=False)
    (row,) = [r for r in report["results"] if r["workload"] == "training"]
    assert row["status"] == "ok", row
    assert row["median_s"] > 0 and row["loop_median_s"] > 0 and row["copy_median_s"] > 0


def test_bench_unknown_workload_and_backend(capsys):
    status, _, err = run_li(capsys, "bench", "--quick", "--workloads", "nope")
    assert status == 2 and "unknown workload" in err and "feedforward" in err
    status, _, err = run_li(capsys, "bench", "--quick", "--backends", "no-such-backend")
    assert status == 2 and "no backend named 'no-such-backend'" in err


@pytest.fixture
def missing_backend(monkeypatch):
    """A registered backend whose library is not installed."""

    class Missing(li_core.Backend):
        name = "missing"
        library = "a_library_that_is_not_installed"
        extra = "missing"

        def handles(self, x):
            return False

        asarray = to_numpy = feed_forward_step = scan = None

    from li_core.registry import _Registered, registry

    _ = registry.backends  # load the registry before patching it
    monkeypatch.setitem(registry.backends, "missing", _Registered(Missing(), "test", "test-dist"))
    monkeypatch.setattr(registry, "_availability", {})
    return "missing"


def test_bench_reports_an_unavailable_backend_as_skipped(missing_backend):
    report = bench.run([missing_backend], quick=True, progress=False)
    (row,) = report["results"]
    assert row["status"] == "skipped"
    assert "a_library_that_is_not_installed" in row["reason"]


def test_demo_on_an_unavailable_backend_says_why_and_how_to_fix_it(capsys, missing_backend):
    status, _, err = run_li(capsys, "demo", "--backend", missing_backend)
    assert status == 2
    assert "a_library_that_is_not_installed" in err
    assert 'pip install -e ".[missing]"' in err  # no such extra: the checkout command


def test_measure_counts_runs_and_synchronises_each():
    calls, synced = [], []
    timing = bench.measure(lambda: calls.append(1) or len(calls), repeats=4, sync=synced.append, warmup=2)
    assert len(calls) == 6
    assert synced == [1, 2, 3, 4, 5, 6]  # after every run, with the run's result
    assert timing.repeats == 4
    assert 0 <= timing.min <= timing.q25 <= timing.median <= timing.q75 <= timing.max
    with pytest.raises(ValueError, match="repeats"):
        bench.measure(lambda: None, repeats=0)


def test_measure_stops_at_its_time_budget():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.05)

    timing = bench.measure(slow, repeats=5, warmup=1, max_seconds=0.01)
    assert len(calls) == 2  # the warm-up, then one timed run: the budget is spent
    assert timing.repeats == 1 and timing.median >= 0.05
    timing = bench.measure(slow, repeats=3, warmup=0, max_seconds=None)
    assert len(calls) == 5 and timing.repeats == 3


def test_copier_and_synchronizer_on_numpy():
    x = np.arange(6.0).reshape(2, 3)
    copy = bench.copier(x)()
    assert copy is not x and not np.shares_memory(copy, x)
    np.testing.assert_array_equal(copy, x)
    bench.synchronizer(x)(copy)  # a no-op on the CPU, and it must not fail


def test_copier_on_torch():
    torch = pytest.importorskip("torch")
    x = torch.arange(6.0)
    copy = bench.copier(x)()
    assert copy.data_ptr() != x.data_ptr() and torch.equal(copy, x)


def test_progress_bar_without_a_terminal():
    stream = io.StringIO()
    bar = bench.Progress(2, stream=stream)
    bar.update("first")
    bar.update("second")
    bar.close()
    assert stream.getvalue().splitlines() == [
        "[------------------------] 1/2 first",
        "[############------------] 2/2 second",
    ]


# -- li check / li compare --------------------------------------------------------------------


def test_compare_runs_through_the_cli(capsys):
    status, out, _ = run_li(capsys, "compare", "--backends", "numpy", "--dtype", "float32", "--steps", "50")
    assert status == 0
    assert re.search(r"numpy\s+float32\s+cpu.*ok", out), out


def test_check_and_compare_without_the_testing_module(capsys, monkeypatch):
    import li_core.testing

    monkeypatch.delattr(li_core.testing, "commands", raising=False)
    monkeypatch.setitem(sys.modules, "li_core.testing.commands", None)
    for name in ("check", "compare"):
        status, _, err = run_li(capsys, name, "numpy")
        assert status == 2
        assert "not available yet" in err
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: li {name}")


# -- help and entry points --------------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: li {command}")
    assert "-h, --help" in out


def test_no_command_prints_help(capsys):
    """Plain ``li`` is how newcomers ask what it does: help, and success."""
    status, out, _ = run_li(capsys)
    assert status == 0
    for command in SUBCOMMANDS:
        assert command in out


def test_python_m_li_core_help():
    result = subprocess.run(
        [sys.executable, "-m", "li_core", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: li")
    for command in SUBCOMMANDS:
        assert command in result.stdout


def test_console_script_is_installed():
    """The ``li`` script pip installed beside this interpreter (in a venv's
    bin, whether or not it is on PATH), else the one on PATH."""
    here = Path(sys.executable).parent
    beside = next((here / name for name in ("li", "li.exe") if (here / name).is_file()), None)
    script = str(beside) if beside is not None else shutil.which("li")
    if script is None:
        pytest.skip(f"no li console script beside {sys.executable} or on PATH (package not installed)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"li-neurons {li_core.__version__}"


def test_backends_says_which_path_torch_takes_on_cuda(capsys, monkeypatch):
    pytest.importorskip("torch")
    from li_backends.torch import cuda

    monkeypatch.setattr(cuda, "fused_unavailable", lambda: "ModuleNotFoundError: No module named 'cupy'")
    status, out, _ = run_li(capsys, "backends")
    assert status == 0
    note = next(line for line in out.splitlines() if line.startswith("torch: on CUDA"))
    assert "torch's own loop (ModuleNotFoundError: No module named 'cupy')" in note
    assert install_command("cuda") in note
    monkeypatch.setattr(cuda, "fused_unavailable", lambda: None)
    _, out, _ = run_li(capsys, "backends")
    assert "torch: on CUDA, scans run the fused CUDA kernels" in out


def test_bench_results_record_date_commit_and_command():
    info = bench.machine_info()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", info["date"])
    assert info["command"]
    checkout = subprocess.run(
        ["git", "-C", str(Path(bench.__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if checkout.returncode == 0:
        assert info["commit"].startswith(checkout.stdout.strip())
    else:
        assert info["commit"] is None
    line = bench.describe_settings(
        {"machine": info, "settings": {"dtype": "float32", "repeats": 3, "quick": True}, "results": []}
    )
    assert info["date"] in line and info["command"] in line


def test_bench_has_a_norse_column_when_norse_is_installed():
    pytest.importorskip("torch")
    pytest.importorskip("norse", reason="Norse is not installed: the norse column stays empty")
    report = bench.run(["torch"], ["small"], repeats=1, quick=True, devices=["cpu"], progress=False)
    (row,) = [r for r in report["results"] if r["status"] == "ok"]
    assert row["norse_median_s"] > 0 and row["speedup_over_norse"] == pytest.approx(
        row["norse_median_s"] / row["median_s"]
    )
    table, _ = bench.result_table(report)
    assert table[0][bench.RESULT_HEADERS.index("vs norse")].endswith("x")


def test_bench_norse_failure_is_a_note_not_a_lost_row(monkeypatch):
    """Norse's LI cannot take a per-neuron v_leak: the long workload's torch row
    must still be timed, with the reason noted."""
    pytest.importorskip("torch")
    pytest.importorskip("norse", reason="Norse is not installed")
    report = bench.run(["torch"], ["long"], repeats=1, quick=True, devices=["cpu"], progress=False)
    (row,) = [r for r in report["results"] if r["workload"] == "long"]
    assert row["status"] == "ok" and row["median_s"] > 0
    assert "norse_median_s" in row or row["norse_reason"]
    if "norse_reason" in row:
        assert any(note.startswith("norse not timed: torch cpu long") for note in bench.result_table(report)[1])


# -- user mistakes: one line on stderr, exit 2, before any work ------------------------------


def refused(capsys, monkeypatch, *argv: str) -> str:
    """Run ``li *argv`` where running a simulation, benchmark or comparison
    fails the test; assert one line on stderr and exit 2; return the line."""

    def never(*args, **kwargs):
        raise AssertionError(f"li {' '.join(argv)} started work although its arguments were refused")

    for name in ("simulate", "simulate_into_store"):
        monkeypatch.setattr(demo, name, never)
    monkeypatch.setattr(bench, "run", never)
    monkeypatch.setattr(compare_module, "compare", never)
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_info:  # argparse's own refusals
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def read_only_directory(tmp_path) -> Path:
    """A directory no file can be created in: one without write permission,
    or (running as root, which ignores permissions) Linux's /proc."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    if Path("/proc/self").is_dir():
        return Path("/proc")
    pytest.skip("no directory here refuses writes")


def test_demo_output_in_a_missing_directory_is_refused_before_simulating(capsys, monkeypatch):
    err = refused(capsys, monkeypatch, "demo", "-o", "/nonexistent/x.png")
    assert err.startswith("li demo: -o/--output '/nonexistent/x.png'") and "does not exist" in err


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no plot is written, so -o is not checked")
def test_demo_output_in_a_read_only_directory_is_refused_before_simulating(capsys, monkeypatch, tmp_path):
    folder = read_only_directory(tmp_path)
    err = refused(capsys, monkeypatch, "demo", "-o", str(folder / "x.png"))
    assert "cannot write in" in err


def test_demo_names_the_file_matplotlib_writes(capsys, tmp_path):
    if not has_matplotlib():
        pytest.skip("matplotlib is not installed")
    status, out, err = run_li(capsys, "demo", "-o", str(tmp_path / "adir"), "--neurons", "8", "--steps", "20")
    assert status == 0, err
    assert f"wrote {tmp_path / 'adir.png'}" in out
    assert_png(tmp_path / "adir.png")
    assert not (tmp_path / "adir").exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (("--seed", "-1"), "argument --seed: must be at least 0"),
        (("--neurons", "100000000000"), "GB of memory"),
        (("--device", "tpu"), "device 'tpu': backend 'numpy' has devices cpu"),
    ],
)
def test_demo_argument_mistakes(capsys, monkeypatch, argv, words):
    assert words in refused(capsys, monkeypatch, "demo", *argv)


def test_demo_on_a_cuda_device_that_torch_cannot_use(capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("torch can use CUDA here")
    err = refused(capsys, monkeypatch, "demo", "--backend", "torch", "--device", "cuda")
    assert "device 'cuda' is not usable by backend 'torch' here" in err


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_compare_steps_must_be_positive(capsys, monkeypatch, steps):
    assert "argument --steps: must be at least 1" in refused(capsys, monkeypatch, "compare", "--steps", steps)


@pytest.mark.parametrize(
    "argv, words",
    [
        (("--dtype", "nonsense"), "--dtype must be one of"),
        (("--devices", "tpu"), "no backend has device(s) tpu"),
    ],
)
def test_bench_argument_mistakes(capsys, monkeypatch, argv, words):
    assert words in refused(capsys, monkeypatch, "bench", "--quick", *argv)


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no chart is written, so --plot is not checked")
def test_bench_plot_onto_a_read_only_path_is_refused_before_timing(capsys, monkeypatch, tmp_path):
    folder = read_only_directory(tmp_path)
    err = refused(capsys, monkeypatch, "bench", "--quick", "--plot", str(folder / "b.png"))
    assert err.startswith("li bench: --plot") and "cannot write in" in err


# -- nothing ran: a non-zero exit saying why -------------------------------------------------


def test_check_of_an_unavailable_backend_says_why(capsys, missing_backend):
    status, out, err = run_li(capsys, "check", missing_backend, "-q")
    assert status == 2
    assert err.startswith("li check: missing is unavailable: ") and "a_library_that_is_not_installed" in err
    assert "passed" not in out and "skipped" not in out  # refused before the suite ran
    status, out, _ = run_li(capsys, "check", missing_backend, "-q", "--allow-skips")
    assert status == 0 and re.search(r"\d+ skipped", out)


def test_check_on_a_device_the_backend_does_not_have(capsys):
    status, _, err = run_li(capsys, "check", "numpy", "--device", "tpu", "-q")
    assert status == 2
    assert "nothing of numpy can be checked here" in err and "'tpu'" in err


def test_check_in_which_every_check_is_skipped_fails(capsys, monkeypatch, missing_backend):
    """Past the check before the run (switched off here), a run whose checks
    were all skipped is still not a success."""
    from li_core.testing import commands

    monkeypatch.setattr(commands, "nothing_to_check", lambda *args: [])
    status, out, err = run_li(capsys, "check", missing_backend, "-q")
    assert status == 1 and "no check ran" in err and re.search(r"\d+ skipped", out)


def test_compare_with_every_row_skipped_fails(capsys, missing_backend):
    status, out, err = run_li(capsys, "compare", "--backends", missing_backend, "--steps", "10")
    assert status == 1
    assert "skipped" in out and "nothing was compared" in err and "a_library_that_is_not_installed" in err
    status, _, _ = run_li(capsys, "compare", "--backends", missing_backend, "--steps", "10", "--allow-skips")
    assert status == 0


def test_bench_in_which_nothing_was_timed_fails(capsys, missing_backend):
    status, _, err = run_li(capsys, "bench", "--quick", "-q", "--backends", missing_backend)
    assert status == 1 and "nothing was timed" in err and "a_library_that_is_not_installed" in err
    status, _, _ = run_li(capsys, "bench", "--quick", "-q", "--backends", missing_backend, "--allow-skips")
    assert status == 0


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no plot is written, so -o is not checked")
def test_demo_output_onto_a_directory_is_refused_before_simulating(capsys, monkeypatch, tmp_path):
    (tmp_path / "plots.png").mkdir()
    err = refused(capsys, monkeypatch, "demo", "-o", str(tmp_path / "plots.png"))
    assert "is a directory" in err


def test_demo_asks_only_its_own_backend_whether_it_can_run():
    """li demo on NumPy must not import every registered backend's library to
    check availability (asking all of them cost it seven seconds)."""
    code = (
        "import sys; from li_core import demo; demo._available('numpy'); "
        "print(sorted(m for m in ('torch', 'jax', 'cupy', 'dask', 'numba') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no plot is written, so -o is not checked")
@pytest.mark.parametrize(
    "output, words",
    [
        ("x.txt", "-o/--output 'x.txt': matplotlib cannot write .txt files; name a file ending in one of"),
        ("x.zarr", "matplotlib cannot write .zarr files"),
        ("", "-o/--output must name a file, got an empty string"),
        ("somedir/", "-o/--output 'somedir/' is a directory; name a file in it"),
        ("TMP", "is a directory; name a file in it"),
    ],
)
def test_demo_output_mistakes_are_refused_before_simulating(capsys, monkeypatch, tmp_path, output, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "somedir").mkdir()
    output = str(tmp_path) if output == "TMP" else output
    assert words in refused(capsys, monkeypatch, "demo", "-o", output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somedir"]  # nothing written


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no chart is written, so --plot is not checked")
def test_bench_plot_in_a_format_matplotlib_does_not_write_is_refused_before_timing(capsys, monkeypatch, tmp_path):
    err = refused(capsys, monkeypatch, "bench", "--quick", "--plot", str(tmp_path / "x.txt"))
    assert "li bench: --plot" in err and "cannot write .txt files" in err


@pytest.mark.skipif(not has_matplotlib(), reason="without matplotlib no plot is written, so -o is not checked")
def test_demo_output_and_store_on_one_path_are_refused(capsys, monkeypatch, tmp_path):
    pytest.importorskip("dask")
    monkeypatch.chdir(tmp_path)
    err = refused(capsys, monkeypatch, "demo", "--backend", "dask", "--store", "out.png", "-o", "out.png")
    assert "-o/--output 'out.png' and --store 'out.png' name the same path" in err


def test_demo_store_in_a_loop_of_symbolic_links_is_refused(capsys, monkeypatch, tmp_path):
    pytest.importorskip("dask")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop").symlink_to("loop")
    err = refused(capsys, monkeypatch, "demo", "--backend", "dask", "--store", "loop", "-o", "d.png")
    assert "--store 'loop' cannot be resolved (a loop of symbolic links" in err


@pytest.mark.parametrize("seconds", ["nan", "-1", "0", "inf"])
def test_bench_max_seconds_must_be_finite_and_positive(capsys, monkeypatch, seconds):
    err = refused(capsys, monkeypatch, "bench", "--quick", "--max-seconds", seconds)
    assert "argument --max-seconds: must be a finite number of seconds > 0" in err


def test_compare_seed_must_not_be_negative(capsys, monkeypatch):
    assert "argument --seed: must be at least 0" in refused(capsys, monkeypatch, "compare", "--seed", "-1")


def test_compare_refuses_more_steps_than_memory_holds(capsys, monkeypatch):
    err = refused(capsys, monkeypatch, "compare", "--steps", "1000000000")
    assert err.startswith("li compare: --steps 1000000000 needs about") and "GB of memory" in err


@pytest.mark.parametrize("argv", [("backends",), ("backends", "--json"), ("demo", "--neurons", "8", "--steps", "20")])
def test_a_closed_pipe_ends_quietly(tmp_path, argv):
    """``li ... | head -1``: the reader is gone before li writes; li ends
    without a traceback, with 141 (128 + SIGPIPE) as a Unix tool would."""
    import os

    read, write = os.pipe()
    run = subprocess.Popen(
        [sys.executable, "-m", "li_core", *argv], stdout=write, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    os.close(write)
    os.close(read)  # (before li has imported itself, let alone written)
    _, err = run.communicate(timeout=300)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert run.returncode == 141, err


def test_demo_whose_store_was_replaced_meanwhile_says_so(capsys, monkeypatch, tmp_path):
    def replaced(result):
        raise StoreChangedError("the Zarr store x was replaced after this result was written")

    monkeypatch.setattr(demo, "summary", replaced)
    status, _, err = run_li(capsys, "demo", "--neurons", "8", "--steps", "20", "-o", str(tmp_path / "d.png"))
    assert status == 1 and err == "li demo: the Zarr store x was replaced after this result was written\n"


def test_the_testing_commands_do_not_import_the_cli_back():
    """li_core.cli loads li_core.testing.commands; the commands take
    UsageError from li_core.errors, not from li_core.cli (no import circle)."""
    code = "import sys, li_core.testing.commands; print('li_core.cli' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
    assert cli.UsageError is li_core.errors.UsageError
