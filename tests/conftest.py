"""Session-wide fixtures shared by every test folder."""

from __future__ import annotations

import os

import pytest

from ecs_nic_operator.devenv.tools import use_virtualenv_tools


def pytest_configure(config: pytest.Config) -> None:
    # Go and kubectl live in the virtualenv (scripts/bootstrap): found even when pytest is run directly.
    use_virtualenv_tools()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests under tests/integration need the real control plane; mark them so `-m "not integration"`
    # gives a quick unit-only run.
    for item in items:
        if f"{os.sep}integration{os.sep}" in str(item.path) or f"{os.sep}faults{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.integration)
