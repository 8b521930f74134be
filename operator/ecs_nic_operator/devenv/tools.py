"""Where the development tools come from: scripts/bootstrap installs Go and kubectl into the virtualenv.

Code started straight from the virtualenv (``.venv/bin/pytest``, ``.venv/bin/ecs-nic-operator demo``) without
the scripts' PATH still finds them, and finds them before any other go or kubectl on the machine, so the
control plane is always built by the Go version its cache key names.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def use_virtualenv_tools() -> None:
    """Put the interpreter's own bin folder first on PATH, for this process and everything it starts."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [here]:
        os.environ["PATH"] = os.pathsep.join([here, path]) if path else here
    # A go.mod line must never make Go fetch another toolchain.
    os.environ.setdefault("GOTOOLCHAIN", "local")


def user_command(name: str) -> str:
    """How the user's own shell reaches a tool: its bare name when their PATH has one, else the virtualenv's
    copy by absolute path (a Python-only machine has kubectl only in .venv/bin, which scripts put on PATH
    for themselves, never for the user's shell)."""
    here = os.path.realpath(Path(sys.executable).parent)
    theirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and os.path.realpath(d) != here]
    if shutil.which(name, path=os.pathsep.join(theirs)):
        return name
    return str(Path(sys.executable).parent / name)
