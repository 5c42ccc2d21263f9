"""What runs where on this machine (``contract doctor``), as a JSON-serialisable dict.

The kernels and their build, the BLAS they call and its version, the CPU
features that change a choice (AMX), kahypar (it shapes ``auto-hq``'s plans),
jax/jaxlib versions, devices and x64. :func:`render` is the CLI's text form.

>>> import json
>>> facts = doctor()
>>> json.loads(json.dumps(facts)) == facts, sorted(facts)
(True, ['blas', 'contract', 'cpu', 'jax', 'kernels', 'planner', 'python'])
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from typing import Any

import jax

from . import native
from .backend.policy import capabilities

__all__ = ["doctor", "render"]

# CPU features that change how a step runs (backend/policy.py) or what XLA emits.
_FEATURES = ("amx_bf16", "amx_int8", "avx512f", "avx2")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas_version(which: str | None) -> str | None:
    """The version of the BLAS the kernels call: the ``mkl`` wheel's, or the
    OpenBLAS SciPy was built with."""
    if which == "mkl":
        return _version("mkl")
    if which == "openblas":
        try:
            import scipy  # noqa: PLC0415 - only asked here

            return scipy.show_config(mode="dicts")["Build Dependencies"]["blas"].get("version")
        except (ImportError, KeyError, TypeError):
            return None
    return None


def doctor() -> dict[str, Any]:
    """What runs where in this process (JSON-serialisable).

    >>> doctor()["kernels"]["status"] == __import__("contract").native.status()
    True
    """
    caps = capabilities()
    return {
        "kernels": {"status": native.status(), "build": native.build(),
                    "switch": f"{native.ENV}=0 turns them off"},
        "blas": {"name": caps.blas, "version": _blas_version(caps.blas)},
        "cpu": {"machine": platform.machine(),
                "features": {f: native.cpu_has(f) for f in _FEATURES}},
        "planner": {"kahypar": importlib.util.find_spec("kahypar") is not None,
                    "annealer": "compiled (contract._anneal)"},
        "jax": {"jax": jax.__version__, "jaxlib": _version("jaxlib"),
                "backend": jax.default_backend(),
                "devices": [str(d) for d in jax.devices()],
                "x64": bool(jax.config.jax_enable_x64)},
        "python": platform.python_version(),
        "contract": _version("contract"),
    }


def render(facts: dict[str, Any]) -> str:
    """The text form of :func:`doctor`'s facts, one line per fact.

    >>> print(render({"python": "3.11.7", "jax": {"x64": False}}))
    python      3.11.7
    jax.x64     False
    """
    lines = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"{prefix:<11} {shown}")

    walk("", facts)
    return "\n".join(lines)
