"""The package as a user receives it: the sdist and the wheel built from the
checkout, their metadata, and the wheel installed into a fresh virtual
environment (not editable) where ``li backends`` and ``li check numpy`` run
from a directory outside the checkout.

The environment is made with ``python -m venv`` without the system's
site-packages: the checkout's editable install lives there, and its import
finder would serve ``li_core`` from the checkout instead of from the wheel.
The wheel is installed with its ``[test]`` extra, which ``li check`` needs
(pytest and array-api-strict), from whatever index pip is configured with, as
the README's test command does. Skipped, with the reason, when ``build`` or
``twine`` is not installed (both are in the ``test`` extra).
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

for module in ("build", "twine"):
    pytest.importorskip(module, reason=f"{module} is not installed; it is part of the test extra")

ROOT = Path(__file__).resolve().parent.parent
#: the CUDA sources the CuPy backend and the torch bridge compile at run time
CUDA_SOURCES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "li_backends").rglob("*.cu"))


def run(command: list[str], timeout: float, cwd: Path | None = None, env: dict | None = None) -> str:
    """Run ``command``; its output, or a test failure that shows it."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel built from that sdist (``python -m build``'s
    default, so a file missing from the sdist is missing from the wheel)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], timeout=300)
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


def test_metadata_passes_twine_check(dist):
    output = run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])], 120)
    assert output.count("PASSED") == 2, output


def test_sdist_and_wheel_carry_the_cuda_sources_and_type_markers(dist):
    assert CUDA_SOURCES, "no .cu files found under li_backends/"
    wheel_files = set(zipfile.ZipFile(dist["wheel"]).namelist())
    with tarfile.open(dist["sdist"]) as sdist:
        sdist_files = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    expected = {*CUDA_SOURCES, "li_core/py.typed", "li_backends/py.typed"}
    assert expected <= wheel_files, f"missing from the wheel: {sorted(expected - wheel_files)}"
    assert expected <= sdist_files, f"missing from the sdist: {sorted(expected - sdist_files)}"
    assert not any(name.startswith(("tests/", "docs/", "benchmarks/")) for name in wheel_files)


def test_wheel_registers_the_command_and_the_pytest_plugin(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(wheel.read(name).decode("utf-8"))
    assert entry_points["console_scripts"]["li"].strip() == "li_core.cli:main"
    plugin = entry_points["pytest11"]["li_conformance"].strip()
    assert (ROOT / Path(*plugin.split("."))).with_suffix(".py").is_file(), plugin


def test_installed_wheel_runs_outside_the_checkout(dist, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", f"li-neurons[test] @ {dist['wheel'].as_uri()}"], timeout=600)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "LI_BACKEND")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = run(
        [str(python), "-c", "import li_core, li_backends; print(li_core.__file__, li_backends.__file__)"],
        60,
        outside,
        env,
    )
    assert all(Path(path).is_relative_to(venv) for path in where.split()), where
    listing = run([str(venv / "bin" / "li"), "backends"], timeout=120, cwd=outside, env=env)
    table = listing.split("\n\n")[0].splitlines()[2:]  # below the header and its rule
    rows = {line.split()[0]: line.split()[1] for line in table}
    assert rows.get("numpy") == "yes" and rows.get("array_api") == "yes", listing
    report = run([str(venv / "bin" / "li"), "check", "numpy", "-q"], timeout=300, cwd=outside, env=env)
    assert " passed" in report and " failed" not in report, report
