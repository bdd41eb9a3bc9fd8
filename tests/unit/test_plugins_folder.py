"""Airflow's plugin loader must not import the library's modules as top-level plugins."""

from __future__ import annotations

from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_plugin_loader_skips_the_library_package():
    # The same walk Airflow's plugins manager does (`find_path_from_directory` with the ignore file).
    from airflow._shared.module_loading import find_path_from_directory

    scanned = [Path(p) for p in find_path_from_directory(str(PLUGINS), ".airflowignore", "glob")]
    ours = [p for p in scanned if "multicloud_dr" in p.parts and p.suffix == ".py"]
    assert not ours, f"Airflow would import these as top-level plugin modules (shadowing e.g. 'http'): {ours}"
    assert (PLUGINS / "multicloud_dr" / "connections" / "http.py").exists(), "the file this guards against moved"
