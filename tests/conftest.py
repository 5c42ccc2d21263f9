"""Test configuration: quiet expected warnings, and no test may skip silently.

A skip fails the run unless its reason is on :data:`ALLOWED_SKIPS`, each
entry with the reason it is acceptable. CI runs on a CPU with every test
dependency installed, so nothing there should need to skip.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import pytest

import contract
from contract import native
from tests._helpers import rearm

# reason text (as the test gives it) -> why such a skip is acceptable.
ALLOWED_SKIPS = {
    "the ones-vector form is CPU-only": "a CPU lowering; on GPU machines there is nothing to check",
}


@pytest.fixture(autouse=True)
def _quiet_float64_truncation() -> None:
    """float64 inputs become float32 without x64: expected in these tests."""
    warnings.filterwarnings("ignore", message=".*Explicitly requested dtype.*")


@pytest.fixture(params=["native", "portable"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run a test with contract's native kernels (contract._kernels: BLAS GEMM,
    conv, scan) and again with them turned off (``CONTRACT_NATIVE=0``): the portable
    XLA lowering every machine must have."""
    if request.param == "portable":
        monkeypatch.setenv(native.ENV, "0")
    rearm()  # native reads the switch again, plans re-lower
    yield request.param
    monkeypatch.undo()
    rearm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    """Turn a skip whose reason is not allowed into a failure that says so."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason not in ALLOWED_SKIPS:
            report.outcome = "failed"
            report.longrepr = (f"silent skip is not allowed: {reason!r} "
                               "(fix the cause, or add the reason to tests/conftest.py's "
                               "ALLOWED_SKIPS with why it is acceptable)")
