"""``li demo``'s Zarr store never costs a user's data: what is refused, what
is replaced, and what an interrupted run leaves (li_core.demo.simulate_into_store)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import li_core
from li_core import cli, demo
from li_core.errors import StoreChangedError
from li_core.testing.tolerances import assert_matches

da = pytest.importorskip("dask.array", reason="the demo store needs li-neurons[dask]")
pytest.importorskip("zarr", reason="the demo store needs li-neurons[dask]")
pytest.importorskip("tqdm", reason="the demo store needs li-neurons[dask]")

SIZES = {"neurons": 20, "inputs": 10, "steps": 300, "progress": False}


def expected_voltages(seed: int) -> np.ndarray:
    spikes, weights = demo.make_inputs(SIZES["neurons"], SIZES["inputs"], SIZES["steps"], seed=seed)
    return li_core.li_scan(spikes, None, weights)[0]


def stored(path: Path) -> np.ndarray:
    return np.asarray(da.from_zarr(str(path)))


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its contents."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A working directory two levels down, with a user's files around it."""
    work = tmp_path / "project" / "run"
    work.mkdir(parents=True)
    for folder in (tmp_path, tmp_path / "project", work):
        (folder / "notes.txt").write_text(f"notes in {folder.name}")
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("store", [".", "..", "", "../..", "HOME", "CWD"])
def test_the_working_directory_its_ancestors_and_home_are_refused_even_with_overwrite(workdir, store, monkeypatch):
    monkeypatch.setenv("HOME", str(workdir.parent))  # Path.home() reads HOME
    store = {"HOME": str(workdir.parent), "CWD": str(workdir)}.get(store, store)
    before = tree(workdir.parents[1])
    with pytest.raises(ValueError, match="store") as info:
        demo.simulate_into_store(store, overwrite=True, **SIZES)
    assert any(words in str(info.value) for words in ("working directory", "home directory", "empty"))
    assert tree(workdir.parents[1]) == before, "a refused store changed files"


def test_a_foreign_directory_is_refused_and_kept(workdir):
    results = workdir / "results"
    results.mkdir()
    (results / "mine.txt").write_text("a user's results")
    with pytest.raises(ValueError, match=r"results.*not a demo store.*overwrite=True"):
        demo.simulate_into_store(results, **SIZES)
    assert tree(results) == {"mine.txt": b"a user's results"}


def test_a_foreign_zarr_array_is_refused_and_kept(workdir):
    other = workdir / "other.zarr"
    da.ones((4, 3), chunks=2).to_zarr(str(other))
    before = tree(other)
    with pytest.raises(ValueError, match="not a demo store"):
        demo.simulate_into_store(other, **SIZES)
    assert tree(other) == before


def test_overwrite_replaces_a_foreign_path(workdir):
    results = workdir / "results"
    results.mkdir()
    (results / "mine.txt").write_text("old")
    demo.simulate_into_store(results, overwrite=True, seed=2, **SIZES)
    assert_matches(stored(results), expected_voltages(2), "float32", "seed 2")
    assert not (results / "mine.txt").exists()


def test_a_previous_demo_store_is_replaced(workdir):
    """Replaced if it exists: the second run's numbers, marked complete, and
    no temporary sibling left behind."""
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    assert_matches(stored(path), expected_voltages(1), "float32", "seed 1")
    result = demo.simulate_into_store(path, seed=2, **SIZES)
    assert_matches(stored(path), expected_voltages(2), "float32", "seed 2")
    assert_matches(np.asarray(result.voltages), expected_voltages(2), "float32", "seed 2")
    assert demo.store_mark(path)["complete"] is True
    assert demo.store_mark(path)["seed"] == 2
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]


def test_an_interrupted_run_keeps_the_previous_store_and_marks_its_own_incomplete(workdir, monkeypatch):
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    marks = []

    def interrupt(block):
        """Stands for Ctrl-C while the blocks are being written; records the
        mark of the store being written."""
        (partial,) = [p for p in workdir.iterdir() if p.name.endswith(".li-demo-partial")]
        marks.append(demo.store_mark(partial / "store"))
        raise KeyboardInterrupt

    scan = li_core.li_scan
    monkeypatch.setattr(
        demo,
        "li_scan",
        lambda *a, **k: (scan(*a, **k)[0].map_blocks(interrupt, meta=np.empty((0, 0), np.float32)), None),
    )
    with pytest.raises(KeyboardInterrupt):
        demo.simulate_into_store(path, seed=2, **SIZES)
    assert marks and marks[0]["complete"] is False  # a reader can tell a partial store
    assert tree(path) == before, "the previous store was touched"
    assert demo.store_mark(path)["complete"] is True
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]  # the partial store is removed


def test_store_mark_of_what_is_not_a_demo_store(workdir):
    assert demo.store_mark(workdir / "missing") is None
    assert demo.store_mark(workdir / "notes.txt") is None
    assert demo.store_mark(workdir) is None


def test_a_symlink_path_is_resolved_once_and_the_resolved_path_is_the_one_written(workdir, monkeypatch):
    """``link/../../..`` follows the link before going up: it names a new
    path beside the link's target, although the same text, normalised
    without the link, names an ancestor of the working directory (or home)."""
    base = workdir.parents[1]
    target = base / "x" / "y" / "z" / "w"
    target.mkdir(parents=True)
    (workdir / "link").symlink_to(target)
    monkeypatch.setenv("HOME", str(base / "home"))
    (base / "home").mkdir()
    (base / "home" / "mine.txt").write_text("home")
    before = tree(base)
    for name in ("project", "home"):  # os.path.normpath: ../.. + name, the working directory's grandparent
        store = f"link/../../../{name}"
        assert os.path.normpath(workdir / store) in (str(base / "project"), str(base / "home"))
        result = demo.simulate_into_store(store, overwrite=True, seed=1, **SIZES)
        assert result.store == str(base / "x" / name)
        assert_matches(stored(base / "x" / name), expected_voltages(1), "float32", "seed 1")
    after = tree(base)
    assert {k: v for k, v in after.items() if not k.startswith("x/")} == before, "a user's file was deleted"


def test_a_loop_of_symbolic_links_is_refused(workdir):
    (workdir / "loop").symlink_to("loop")
    with pytest.raises(ValueError, match=r"store 'loop' cannot be resolved \(a loop of symbolic links"):
        demo.check_store("loop")


def test_a_demo_store_holding_a_users_file_is_foreign(workdir):
    """Only the array's metadata and chunk files are the library's: a user's
    notes inside an earlier store make it foreign (kept without overwrite)."""
    path = workdir / "ds.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    (path / "NOTES.txt").write_text("notes")
    with pytest.raises(ValueError, match=r"also holds 'NOTES.txt', which li demo did not write.*overwrite=True"):
        demo.simulate_into_store(path, seed=2, **SIZES)
    assert (path / "NOTES.txt").read_text() == "notes" and demo.store_mark(path)["seed"] == 1
    assert demo.foreign_entry(path) == "NOTES.txt"
    (path / "NOTES.txt").unlink()
    assert demo.foreign_entry(path) is None  # (every chunk key and the metadata are its own)
    (path / "c" / "0" / "7").write_bytes(b"x")  # a chunk key outside the grid
    assert demo.foreign_entry(path) == "c/0/7"


def test_a_result_reads_its_own_run_or_refuses(workdir):
    """A result is lazy over its store; once another run has replaced the
    store it refuses to read the other run's voltages as its own."""
    path = workdir / "v.zarr"
    first = demo.simulate_into_store(path, seed=1, **SIZES)
    assert_matches(np.asarray(first.voltages), expected_voltages(1), "float32", "seed 1")
    second = demo.simulate_into_store(path, seed=2, **SIZES)
    with pytest.raises(StoreChangedError, match="replaced after this result was written"):
        np.asarray(first.voltages)
    assert_matches(np.asarray(second.voltages), expected_voltages(2), "float32", "seed 2")


#: (the call that is interrupted, before or after it takes effect): the
#: renames in order (0: the previous store aside, 1: the new one into
#: place, 2: the previous one back) and the final removal
INTERRUPTS = [
    [("rename", 0, "before")],
    [("rename", 0, "after")],
    [("rename", 1, "before")],
    [("rename", 1, "after")],
    [("rmtree", 0, "before")],
    [("rename", 0, "after"), ("rename", 2, "before")],  # a second Ctrl-C while putting it back
]


@pytest.mark.parametrize("interrupts", INTERRUPTS, ids=lambda i: "+".join(f"{c}{k}-{w}" for c, k, w in i))
def test_an_interrupt_at_any_moment_of_the_replacement_loses_nothing(workdir, monkeypatch, interrupts):
    """KeyboardInterrupt at each step of putting the new store in place:
    afterwards the store is the previous one or the complete new one, and
    a previous store still in a partial directory is put back by the next
    run (settle_leftovers), which leaves no partial directory."""
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    calls = {"rename": 0, "rmtree": 0}
    rename, rmtree = os.rename, shutil.rmtree

    def interrupted(name, real):
        def call(*args, **kwargs):
            k = calls[name]
            calls[name] += 1
            when = next((w for c, n, w in interrupts if c == name and n == k), None)
            if when == "before":
                raise KeyboardInterrupt
            real(*args, **kwargs)
            if when == "after":
                raise KeyboardInterrupt

        return call

    def counting(name, real):
        def call(*args, **kwargs):  # (only the renames of whole stores and the removal of the run's directory)
            return interrupted(name, real)(*args, **kwargs) if ours(name, args) else real(*args, **kwargs)

        return call

    def ours(name, args):
        if name == "rmtree":
            return str(args[0]).endswith(demo.PARTIAL_SUFFIX)
        return any(str(a) == str(path) or os.path.basename(str(a)) == "previous" for a in args)

    monkeypatch.setattr(demo.os, "rename", counting("rename", rename))
    monkeypatch.setattr(demo.shutil, "rmtree", counting("rmtree", rmtree))
    with pytest.raises(KeyboardInterrupt):
        demo.simulate_into_store(path, seed=2, **SIZES)
    monkeypatch.undo()
    demo.settle_leftovers(path)
    mark = demo.store_mark(path)
    assert mark is not None and mark["complete"] is True, "the store is gone"
    if mark["seed"] == 1:
        assert tree(path) == before, "the previous store was changed"
    else:
        assert_matches(stored(path), expected_voltages(2), "float32", "seed 2")
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]


def test_an_immutable_or_read_only_old_store_is_refused_before_the_run(workdir, monkeypatch):
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    chunks = path / "c"
    real_access = os.access
    monkeypatch.setattr(demo.os, "access", lambda p, mode: real_access(p, mode) and Path(p) != chunks)
    monkeypatch.setattr(demo, "li_scan", never)
    with pytest.raises(ValueError, match=r"store .* cannot be replaced: it is read-only or immutable: 'c' in it"):
        demo.simulate_into_store(path, seed=2, overwrite=True, **SIZES)
    assert tree(path) == before


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="chattr +i needs root")
def test_an_immutable_old_store_is_refused_by_li_demo(workdir, capsys, monkeypatch):
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
        pytest.skip("this file system has no immutable flag")
    try:
        monkeypatch.setattr(demo, "simulate_into_store", never)
        status, _, err = li(capsys, "demo", "--backend", "dask", "--store", "v.zarr", "-o", "d.png")
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert status == 2 and err.count("\n") == 1 and "read-only or immutable" in err, err


KILLED_RUN = """
import sys
from li_core import demo
demo.simulate_into_store(sys.argv[1], neurons=40000, inputs=10, steps=3000, progress=False)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_killed_runs_partial_directory_is_kept_while_it_lives_and_removed_by_the_next_run(workdir):
    """A live run's partial directory is locked: another run leaves it; once
    the run is killed (SIGKILL: no clean-up of its own), the next run
    removes it."""
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        partial: list[Path] = []
        while time.monotonic() < deadline and run.poll() is None:
            partial = [p for p in workdir.iterdir() if p.name.endswith(demo.PARTIAL_SUFFIX) and (p / "store").exists()]
            if partial:
                break
            time.sleep(0.05)
        assert partial, f"no partial directory appeared: {run.stderr.read() if run.poll() is not None else ''}"
        demo.settle_leftovers(path)  # the run lives: its directory stays
        assert all(p.exists() for p in partial)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert all(p.exists() for p in partial)  # (what a killed run leaves)
    demo.simulate_into_store(path, seed=2, **SIZES)
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]
    assert demo.store_mark(path)["seed"] == 2 and tree(path) != before


def test_the_previous_store_left_in_a_killed_runs_directory_is_put_back(workdir):
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    leftover = workdir / f".v.zarr.abcd_123{demo.PARTIAL_SUFFIX}"
    leftover.mkdir()
    os.rename(path, leftover / "previous")  # killed between the two renames
    other = workdir / f".v.zarr.x.abcd_123{demo.PARTIAL_SUFFIX}"  # another store's (v.zarr.x)
    other.mkdir()
    assert demo.settle_leftovers(path) == [str(path)]
    assert tree(path) == before and not leftover.exists() and other.exists()


# -- through the command line ----------------------------------------------------------------


def li(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def never(*args, **kwargs):
    raise AssertionError("the simulation ran although the arguments were refused")


@pytest.mark.parametrize("name", ["notes.txt", "results"])
def test_li_demo_refuses_an_existing_file_or_foreign_directory_before_simulating(workdir, capsys, monkeypatch, name):
    (workdir / "results").mkdir()
    monkeypatch.setattr(demo, "simulate_into_store", never)
    status, _, err = li(capsys, "demo", "--backend", "dask", "--store", name, "-o", "d.png")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith(f"li demo: --store '{name}' exists") and "--overwrite" in err
    assert (workdir / "notes.txt").read_text() == "notes in run"


def test_li_demo_refuses_the_working_directory(workdir, capsys, monkeypatch):
    monkeypatch.setattr(demo, "simulate_into_store", never)
    status, _, err = li(capsys, "demo", "--backend", "dask", "--store", ".", "--overwrite")
    assert status == 2 and "working directory" in err and err.count("\n") == 1
    assert (workdir / "notes.txt").exists()


def test_li_demo_overwrite_replaces_a_foreign_directory(workdir, capsys):
    (workdir / "results").mkdir()
    arguments = ["demo", "--backend", "dask", "--store", "results", "--neurons", "8", "--steps", "50", "-o", "d.png"]
    status, out, err = li(capsys, *arguments, "--overwrite")
    assert status == 0, err
    assert (
        f"into the Zarr store {workdir / 'results'}" in out and demo.store_mark(workdir / "results")["complete"] is True
    )


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
def test_li_demo_stopped_by_sigterm_keeps_the_previous_store_and_cleans_up(workdir):
    """SIGTERM ends li demo as Ctrl-C would: status 143 (not killed), the
    previous store as it was, nothing left that the next run keeps."""
    path = workdir / "v.zarr"
    demo.simulate_into_store(path, seed=1, **SIZES)
    before = tree(path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = ["demo", "--backend", "dask", "--neurons", "40000", "--inputs", "10", "--steps", "3000", "-o", "d.png"]
    run = subprocess.Popen(
        [sys.executable, "-m", "li_core", *argv, "--store", "v.zarr"], cwd=workdir, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            if any((p / "store").exists() for p in workdir.iterdir() if p.name.endswith(demo.PARTIAL_SUFFIX)):
                break
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 143, run.stderr.read()
    assert tree(path) == before
    demo.settle_leftovers(path)  # (Dask's threads may still have been writing blocks when the run removed its own)
    assert sorted(os.listdir(workdir)) == ["notes.txt", "v.zarr"]


def test_the_progress_bar_survives_an_interrupt_before_it_exists():
    """Dask calls the callback's _finish after an interrupt even where its
    _start_state (which makes tqdm's bar) never ran; that must not replace
    the interrupt with an AttributeError."""
    bar = demo._progress_bar()(disable=True)
    bar._finish(None, None, True)
