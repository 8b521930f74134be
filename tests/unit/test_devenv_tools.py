"""What the demo tells a user to type: a tool their own shell can reach."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ecs_nic_operator.devenv.tools import user_command


def _tool(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)


def test_a_tool_the_users_path_lacks_is_named_by_its_virtualenv_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv_bin = Path(sys.executable).parent
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv_bin), str(tmp_path / "empty")]))
    assert user_command("no-such-tool-xyz") == str(venv_bin / "no-such-tool-xyz")


def test_a_tool_on_the_users_own_path_is_named_plainly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _tool(tmp_path / "bin", "no-such-tool-xyz")
    venv_bin = Path(sys.executable).parent
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv_bin), str(tmp_path / "bin")]))
    assert user_command("no-such-tool-xyz") == "no-such-tool-xyz"
