"""Norse's own leaky-integrator tests, run against this project.

Norse 1.1 ships its tests inside the installed package. They are read from
there at test time (never copied into this repository), their imports are
rewritten to ``li_core`` and ``li_backends.torch_nn`` (nothing else changes),
and they run in a pytest subprocess; each Norse test is reported here as a
test of its own. Skipped, with the reason, when Norse is not installed.

The module tests call ``module(x)[0].sum().backward()`` on modules with
nothing to train, which works in Norse because its resting state's voltage is
a leaf that requires grad; the last tests pin down how the torch modules
reproduce that for code ported from Norse.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from li_backends.torch_nn import LI, LICell, LILinearCell  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core import LIParameters  # noqa: E402 - after the importorskip above, which skips the module without the library

NORSE_TESTS = {
    "functional": (
        "torch/functional/test/test_leaky_integrator.py",
        "norse.torch.functional.leaky_integrator",
        "li_core",
    ),
    "module": (
        "torch/module/test/test_leaky_integrator.py",
        "norse.torch.module.leaky_integrator",
        "li_backends.torch_nn",
    ),
}


def _norse_root() -> Path | None:
    spec = importlib.util.find_spec("norse")  # finds the package without importing it
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _norse_test_names() -> list[tuple[str, str]]:
    root = _norse_root()
    if root is None:
        return []
    return [
        (kind, node.name)
        for kind, (path, _, _) in NORSE_TESTS.items()
        if (root / path).exists()
        for node in ast.parse((root / path).read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def _ported(source: str, norse_module: str, ours: str) -> str:
    """Norse's test file with its imports of ``norse_module`` pointing at ``ours``."""
    ported = source.replace(f"from {norse_module} import", f"from {ours} import")
    assert "norse" not in ported, "an import from Norse is left: the rewrite would test Norse, not this project"
    return ported


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[tuple[str, str], tuple[str, str]]:
    """``(kind, test name) -> (outcome, message)`` from one pytest run per Norse file."""
    root, results = _norse_root(), {}
    assert root is not None
    for kind, (path, norse_module, ours) in NORSE_TESTS.items():
        folder = tmp_path_factory.mktemp(f"norse_{kind}")
        ported = folder / f"test_norse_{kind}_leaky_integrator.py"
        ported.write_text(_ported((root / path).read_text(encoding="utf-8"), norse_module, ours), encoding="utf-8")
        report = folder / "report.xml"
        command = [sys.executable, "-m", "pytest", str(ported), "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        run = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)
        assert report.exists(), f"pytest did not run {path}:\n{run.stdout}\n{run.stderr}"
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            problem = next(iter(case), None)  # <failure>, <error> or <skipped>, if any
            outcome = "passed" if problem is None else problem.tag
            message = "" if problem is None else f"{problem.get('message', '')}\n{problem.text or ''}"
            results[(kind, case.get("name"))] = (outcome, message)
    return results


@pytest.mark.skipif(_norse_root() is None, reason="norse is not installed (pip install norse==1.1.0)")
@pytest.mark.parametrize(("kind", "name"), _norse_test_names(), ids=[f"{k}::{n}" for k, n in _norse_test_names()])
def test_norse_leaky_integrator_test_passes_here(outcomes, kind, name):
    outcome, message = outcomes[(kind, name)]
    if outcome == "skipped":
        pytest.skip(f"Norse's {name} skips here: {message.strip()}")
    assert outcome == "passed", f"Norse's {kind} test {name} {outcome} against this project:\n{message}"


# --- how code ported from Norse experiences the resting state -----------------------------------------------------


@pytest.mark.parametrize(
    ("module", "data"),
    [(LI(), torch.ones(100, 12)), (LICell(), torch.ones(10, 12, 1))],
    ids=["LI", "LICell"],
)
def test_backward_runs_on_modules_with_nothing_to_train(module, data):
    """As in Norse: the resting voltage is a leaf that requires grad."""
    out, state = module(data)
    out.sum().backward()
    assert out.requires_grad and state.v.requires_grad


def test_resting_state_numbers_are_unchanged():
    p = LIParameters(150.0, 80.0, 0.25)
    data = torch.randn(20, 3, 4)
    out, _ = LI(p)(data)
    with torch.no_grad():
        plain, _ = LI(p)(data)
    torch.testing.assert_close(out.detach(), plain, rtol=0, atol=0)


def test_no_grad_and_inference_give_plain_tensors():
    with torch.no_grad():
        out, state = LI()(torch.ones(5, 2))
    assert not out.requires_grad and not state.v.requires_grad
    with torch.inference_mode():
        out, _ = LILinearCell(2, 3)(torch.ones(5, 2))
    assert not out.requires_grad


def test_trainable_leak_still_gets_its_gradient():
    """Where the model trains something, its graph is used as it is (a trainable
    ``v_leak`` keeps its gradient through the resting state)."""
    v_leak = torch.nn.Parameter(torch.zeros(4))
    layer = LI(LIParameters(200.0, 100.0, v_leak))
    out, _ = layer(torch.ones(30, 4))
    out.sum().backward()
    assert v_leak.grad is not None and torch.all(v_leak.grad > 0)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_compiled_modules_without_parameters_run():
    """``torch.compile(fullgraph=True)`` cannot return tensors derived from a
    leaf made inside the graph, so compiled modules start from li_core's plain
    resting state (the same numbers)."""
    layer, data = LI(), torch.ones(20, 3)
    eager, _ = layer(data)
    compiled, _ = torch.compile(layer, fullgraph=True)(data)
    torch.testing.assert_close(compiled, eager.detach())
