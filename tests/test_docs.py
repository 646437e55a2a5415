"""The documentation site: it builds with warnings as errors, every example in it runs
(Sphinx's doctest builder runs the ``testcode`` blocks of the pages and the ``>>>``
examples of the docstrings it renders), every Python example is a tested block, and every
public module has an API page."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.rst"))
PUBLIC_MODULES = ["gpuchain", "gpuchain.functional", "gpuchain.linalg", "gpuchain.random",
                  "gpuchain.pytree", "gpuchain.nn", "gpuchain.nn.functional", "gpuchain.optim",
                  "gpuchain.optim.lr_scheduler", "gpuchain.extend", "gpuchain.distributed",
                  "gpuchain.cuda", "gpuchain.testing", "gpuchain.plotting", "gpuchain.data",
                  "gpuchain.interop", "gpuchain.nn.torch_compat"]


def _sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("sphinx", reason="the docs extra is not installed "
                                         "(pip install \".[docs]\")")
    return subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going",
                           "-q", "-b", builder, str(DOCS), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def test_site_builds_with_warnings_as_errors(tmp_path):
    proc = _sphinx("html", tmp_path / "html")
    assert proc.returncode == 0, proc.stderr[-6000:]
    for page in PAGES:
        html = tmp_path / "html" / page.relative_to(DOCS).with_suffix(".html")
        assert html.is_file(), f"{page} was not built"
    api = (tmp_path / "html" / "api" / "gpuchain.html").read_text()
    assert 'id="gpuchain.grad"' in api and 'id="gpuchain.Tensor"' not in api


def test_every_example_runs(tmp_path):
    proc = _sphinx("doctest", tmp_path / "doctest")
    report = (tmp_path / "doctest" / "output.txt")
    text = report.read_text() if report.exists() else ""
    assert proc.returncode == 0, (text[-6000:], proc.stderr[-3000:])
    tests = int(re.search(r"^\s*(\d+) tests?$", text, re.M).group(1))
    assert re.search(r"^\s*0 failures in tests$", text, re.M), text[-3000:]
    testcode_blocks = sum(p.read_text().count(".. testcode::") for p in PAGES)
    assert testcode_blocks >= 40 and tests >= testcode_blocks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_python_examples_are_tested_blocks(page):
    """A Python example must be a ``testcode`` or ``doctest`` block (which run), never a
    plain ``code-block`` (which would not)."""
    text = page.read_text()
    untested = re.findall(r"^\s*\.\. (?:code-block|code|sourcecode)::\s*(?:python|py|pycon)"
                          r"\s*$", text, re.M)
    assert not untested, f"{page.name}: use .. testcode:: for Python examples"
    tested = re.compile(r"\s*\.\. (?:testcode|testsetup|testcleanup|testoutput|doctest)")
    for head, block in re.findall(r"^(.*)::[ \t]*\n\n((?:[ \t]+.*\n|\n)+)", text, re.M):
        if tested.match(head):
            continue
        assert not re.search(r"^\s*(?:>>> )?(?:import|from) gpuchain", block, re.M), \
            f"{page.name}: a literal block holds Python code that does not run:\n{block}"


def test_every_public_module_has_an_api_page():
    api = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.rst"))
    documented = set(re.findall(r"^\.\. automodule:: (\S+)", api, re.M))
    for name in PUBLIC_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pytest.fail(f"{name} does not import")
        assert name in documented, f"no API page documents {name}"


def test_every_page_is_in_a_toctree():
    index_texts = "\n".join(p.read_text() for p in PAGES if "toctree::" in p.read_text())
    for page in PAGES:
        rel = page.relative_to(DOCS).with_suffix("").as_posix()
        if rel == "index":
            continue
        name = rel.rsplit("/", 1)[-1]
        assert re.search(rf"^\s+(?:{re.escape(rel)}|{re.escape(name)})\s*$", index_texts,
                         re.M), f"{rel} is not in any toctree"


def test_readme_links_the_docs_and_says_how_to_build_them():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Documentation", 1)
    assert len(section) == 2, "README.md has no Documentation section"
    body = section[1].split("\n## ", 1)[0]
    assert 'pip install ".[docs]"' in body
    assert "sphinx-build -W -b html docs docs/_build/html" in body
    assert "docs/" in body
