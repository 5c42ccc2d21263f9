"""Every public name is documented; every example and the README's claims run."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import contract

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("name", sorted(contract.__all__))
def test_public_name_has_docstring(name: str) -> None:
    obj = getattr(contract, name)
    if isinstance(obj, dict):  # a registry: documented in its module
        return
    assert inspect.getdoc(obj), f"contract.{name} has no docstring"


def test_api_reference_lists_every_public_name() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    missing = [n for n in contract.__all__ if f"`contract.{n}`" not in text]
    assert not missing, f"docs/api.md lacks {missing}; run python tools/gen_api_docs.py"


def test_examples_exist() -> None:
    assert EXAMPLES, "examples/ is empty"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), f"{script.name} printed nothing"
    # Exit 0 means something only if the example checks what it shows.
    text = script.read_text()
    assert any(check in text for check in ("assert_allclose", "assert_array_equal", "assert ")), (
        f"{script.name} checks none of its results against NumPy")
