"""Test configuration for the einsum tests (helpers live in contract.testing)."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet_float64_truncation() -> None:
    """float64 inputs become float32 without x64: expected in these tests."""
    warnings.filterwarnings("ignore", message=".*Explicitly requested dtype.*")
