"""Fixtures for the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_helpers import INFRA, FakeCloud
from pycep import BicepParser


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict]:
    """Every Bicep file under infra/, parsed by pycep (the parser checkov uses), keyed by relative path."""
    parser = BicepParser()
    return {str(p.relative_to(INFRA)): parser.parse(file_path=p) for p in sorted(INFRA.rglob("*.bicep"))}


@pytest.fixture
def cloud(tmp_path: Path) -> FakeCloud:
    return FakeCloud(tmp_path)
