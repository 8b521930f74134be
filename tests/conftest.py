"""Session-wide fixtures shared by every test folder."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests under tests/integration need the real control plane; mark them so `-m "not integration"`
    # gives a quick unit-only run.
    for item in items:
        if f"{os.sep}integration{os.sep}" in str(item.path) or f"{os.sep}faults{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.integration)
