"""The plugin registry with real entry points: distributions are written to
disk (dist-info with entry_points.txt) and found by importlib.metadata in a
fresh interpreter, exactly as an installed third-party backend would be."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGINS = {
    "good_li_plugin": '''
        import li_core
        from li_backends.numpy import NumPyBackend

        class Doubling(NumPyBackend):
            """NumPy arithmetic under another name, with doubled voltages (so we can see it ran)."""
            name = "good"
            priority = 1

            def scan(self, *args):
                vs, state = super().scan(*args)
                return 2 * vs, state

        @li_core.hookimpl
        def li_register_backends():
            return [Doubling()]
    ''',
    "raising_li_plugin": """
        import li_core

        @li_core.hookimpl
        def li_register_backends():
            raise RuntimeError("boom in the hook")
    """,
    "duplicate_li_plugin": """
        import li_core
        from li_backends.numpy import NumPyBackend

        class Impostor(NumPyBackend):
            priority = 1000

        @li_core.hookimpl
        def li_register_backends():
            return [Impostor(), object()]
    """,
}

ENTRY_POINTS = {
    "good-li-plugin": ("good", "good_li_plugin"),
    "raising-li-plugin": ("raising", "raising_li_plugin"),
    "duplicate-li-plugin": ("duplicate", "duplicate_li_plugin"),
    "missing-li-plugin": ("missing", "module_that_does_not_exist_xyz"),
}

PROBE = r"""
import json, sys, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import li_core
    rows = li_core.list_backends()
    result = {"backends": [r.name for r in rows],
              "distributions": {r.name: r.distribution for r in rows},
              "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}
x = np.ones((3, 1), dtype=np.float64)
result["numpy_auto"] = li_core.li_scan(x)[0].ravel().tolist()
if "good" in result["backends"]:
    result["good"] = li_core.li_scan(x, backend="good")[0].ravel().tolist()
result["heavy_imported"] = [m for m in ("torch", "cupy", "jax", "dask", "distributed", "zarr") if m in sys.modules]
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory holding the plugin modules and their dist-info metadata."""
    root = tmp_path_factory.mktemp("site")
    for module, source in PLUGINS.items():
        (root / module).mkdir()
        (root / module / "__init__.py").write_text(textwrap.dedent(source))
    for distribution, (entry, target) in ENTRY_POINTS.items():
        info = root / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[li.backends]\n{entry} = {target}\n")
    return root


def probe(site, **env):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **env}
    environment.pop("LI_BACKEND", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environment, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_installed_plugin_is_registered_and_runs(site):
    result = probe(site)
    assert "good" in result["backends"]
    assert result["distributions"]["good"] == "good-li-plugin"
    assert result["good"] == [2 * v for v in result["numpy_auto"]]
    assert result["numpy_auto"][0] == pytest.approx(0.1)


def test_failures_are_contained_and_named(site):
    result = probe(site)
    text = "\n".join(result["warnings"])
    assert "PluginWarning: li: plugin 'missing' (from missing-li-plugin) failed to load" in text
    assert "ModuleNotFoundError" in text and "module_that_does_not_exist_xyz" in text
    assert "plugin 'raising' (from raising-li-plugin) raised in li_register_backends" in text
    assert "boom in the hook" in text
    assert "is not a li_core.Backend; skipped" in text
    assert set(result["backends"]) >= {"numpy", "array_api", "good"}


def test_duplicate_name_keeps_the_built_in_and_names_both(site):
    result = probe(site)
    text = "\n".join(result["warnings"])
    assert "backend 'numpy' from plugin 'duplicate' (from duplicate-li-plugin) duplicates the one from" in text
    assert "plugin 'li_backends.numpy' (from li-neurons)" in text
    assert result["distributions"]["numpy"] == "li-neurons"
    assert result["numpy_auto"][0] == pytest.approx(0.1)  # the impostor (priority 1000) is not used


def test_disable_plugins_loads_built_ins_only(site):
    result = probe(site, LI_DISABLE_PLUGINS="1")
    assert "good" not in result["backends"] and "numpy" in result["backends"]
    assert result["warnings"] == []


def test_registering_imports_no_heavy_library(site):
    code = (
        "import sys, li_core\n"
        "from li_core.registry import registry\n"
        "names = sorted(registry.backends)\n"
        "print([m for m in ('torch', 'cupy', 'jax') if m in sys.modules], names)\n"
    )
    env = {**os.environ, "LI_DISABLE_PLUGINS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[] ["), done.stdout
