"""Run a real kube-apiserver backed by a real etcd on loopback, the way controller-runtime's envtest does.

The binaries come from ``hack/controlplane/build.sh`` (built from their Go modules and cached) or from
``KUBEBUILDER_ASSETS``. Everything is per instance: a temporary folder holds etcd's data, the serving
certificate the API server generates for itself, a service-account signing key and an admin kubeconfig.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says what happened."""


def repo_root() -> Path:
    """The checkout holding hack/controlplane (the package is installed editable from it)."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "hack" / "controlplane" / "build.sh").is_file():
                return candidate
    raise ControlPlaneError("cannot find hack/controlplane/build.sh: run from the ecs-nic-operator checkout")


def ensure_binaries() -> Path:
    """Build (or reuse) kube-apiserver and etcd; return the folder holding both."""
    script = repo_root() / "hack" / "controlplane" / "build.sh"
    # Progress goes straight to the user's terminal: the first build takes minutes.
    proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ControlPlaneError(f"building the control plane failed (exit {proc.returncode}); see the output above")
    folder = Path(lines[-1])
    for name in ("kube-apiserver", "etcd"):
        if not os.access(folder / name, os.X_OK):
            raise ControlPlaneError(f"{folder / name} is missing after the build")
    return folder


def install_crds(env: Mapping[str, str], timeout: float = 60) -> None:
    """Apply crds/ to the cluster in ``env``'s KUBECONFIG and return once both kinds are served. A CRD reports
    Established before its storage answers (429 "storage is (re)initializing") and before discovery knows
    its names, so an operator or a test that lists right after Established could fail, or log an ERROR."""

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], env=dict(env), capture_output=True, text=True, check=False)

    for args in (
        ("apply", "-f", str(repo_root() / "crds")),
        ("wait", "--for=condition=Established", f"--timeout={timeout:.0f}s", "crd", "--all"),
    ):
        if (done := kubectl(*args)).returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    probe = ("get", "ecsnicattachments,ecsclouds", "-A", "-o", "name", "--request-timeout=5s")
    deadline = time.monotonic() + timeout
    while (served := kubectl(*probe)).returncode != 0:
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"the API server does not serve the CRDs: {served.stderr.strip()}")
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlane:
    """One kube-apiserver + etcd pair. Use as a context manager, or call start() and stop()."""

    binaries: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecsnic-cp-")))
    log: IO[str] | None = None
    api_port: int = 0
    etcd_port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    api_args: list[str] = field(default_factory=list)  # extra kube-apiserver flags (tests of its edge cases)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        self._prepare()
        self._start_etcd()
        self._start_apiserver()
        self._wait_ready(timeout)
        self._write_kubeconfig()

    def stop(self) -> None:
        self.stop_processes()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_processes(self) -> None:
        # The API server first, and only then etcd: an API server that loses etcd first hangs ~20 s on exit.
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def restart_apiserver(self, timeout: float = 60.0) -> None:
        """Stop and start kube-apiserver alone (etcd keeps the data), on the same port."""
        apiserver = self._procs.pop()
        apiserver.terminate()
        try:
            apiserver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Graceful shutdown can outlast open watches' drain; a crash is as good a restart for the callers.
            apiserver.kill()
            apiserver.wait()
        self._start_apiserver()
        self._wait_ready(timeout)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (kubectl, the operator) that should talk to this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def _prepare(self) -> None:
        (self.workdir / "certs").mkdir(parents=True, exist_ok=True)
        self.api_port = self.api_port or free_port()
        self.etcd_port = self.etcd_port or free_port()
        key = self.workdir / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(self.workdir / "sa.pub")],
            check=True,
            capture_output=True,
        )
        # A static token file is the simplest admin identity; system:masters bypasses RBAC, which the
        # RBAC tests then exercise with real ServiceAccount tokens.
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        (self.workdir / "audit-policy.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [
                        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete"]},
                        {"level": "None"},
                    ],
                }
            )
        )

    def _spawn(self, args: list[str]) -> None:
        out = self.log if self.log is not None else subprocess.DEVNULL
        self._procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))

    def _start_etcd(self) -> None:
        peer = free_port()
        self._spawn(
            [
                str(self.binaries / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ]
        )

    def _start_apiserver(self) -> None:
        self._spawn(
            [
                str(self.binaries / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--secure-port={self.api_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
                "--disable-admission-plugins=ServiceAccount",
                f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--v=0",
                *self.api_args,
            ]
        )

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{proc.args!r} exited with {proc.returncode}: {last}")
            if self.ca_file.exists():
                request = urllib.request.Request(
                    f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"}
                )
                try:
                    with urllib.request.urlopen(request, context=self._ssl_context(), timeout=5) as resp:
                        if resp.status == 200:
                            return
                except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
                    last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"kube-apiserver was not ready within {timeout:.0f} s: {last}")

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "ecsnic",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "ecsnic", "context": {"cluster": "ecsnic", "user": "admin"}}],
            "current-context": "ecsnic",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))


def main() -> None:
    """`python -m ecs_nic_operator.devenv.controlplane`: start one and wait (handy for poking at it)."""
    with ControlPlane(ensure_binaries(), log=sys.stderr) as cp:
        print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
