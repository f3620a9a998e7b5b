"""Fixtures for the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from infra_helpers import INFRA
from pycep import BicepParser


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict]:
    """Every Bicep file under infra/, parsed by pycep (the parser checkov uses), keyed by relative path."""
    parser = BicepParser()
    return {str(p.relative_to(INFRA)): parser.parse(file_path=p) for p in sorted(INFRA.rglob("*.bicep"))}


@pytest.fixture(scope="session")
def fake_azure(tmp_path_factory):
    """One fake Azure for the session and an az config signed in to it, copied into each test."""
    from fakeazure import FakeAzure
    from realcloud import sign_in

    root = tmp_path_factory.mktemp("fake-azure")
    with FakeAzure(root) as azure:
        sign_in(root / "signed-in", azure)
        yield azure, root / "signed-in"


@pytest.fixture
def real(fake_azure, tmp_path: Path):
    from realcloud import RealCloud

    azure, template = fake_azure
    azure.reset()
    return RealCloud(tmp_path, azure, template)
