"""Type checkers see gpuchain's public names: the op functions attached to ``gpuchain``
at import are spelled out under ``TYPE_CHECKING`` for them, one star import per op
family, and that list follows ``gpuchain.ops.FAMILIES``. (``.ci/run`` runs mypy on
``tests/typing/public_api.py``, user code written against the public API.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpuchain import ops

ROOT = Path(__file__).resolve().parents[1]


def test_every_op_family_is_visible_to_type_checkers():
    init = (ROOT / "gpuchain" / "__init__.py").read_text()
    block = init.split("if TYPE_CHECKING:", 1)[1].split("\n\n", 1)[0]
    imported = set(re.findall(r"from gpuchain\.ops\.(\w+) import \*", block))
    families = {f.__name__.rsplit(".", 1)[1] for f in ops.FAMILIES}
    assert imported == families, (f"add to the TYPE_CHECKING block: {families - imported}; "
                                  f"remove: {imported - families}")


def test_user_code_type_checks():
    pytest.importorskip("mypy", reason="mypy is not installed")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           str(ROOT / "pyproject.toml"), "--no-incremental",
                           str(ROOT / "tests" / "typing" / "public_api.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]

