"""The wheel carries every subpackage and the CUDA kernels."""

import pathlib

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "gpuchain").rglob("__init__.py")}
    assert found - listed == set(), f"packages missing from pyproject: {found - listed}"
    assert config["package-dir"]["gpuchain._kernels"] == "kernels"
    assert any((ROOT / "kernels").glob("*.cu"))
