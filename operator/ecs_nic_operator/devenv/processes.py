"""The simulator and the operator as child processes, for demo, tests and the benchmark.

Real processes rather than threads: tests kill the operator with SIGKILL at chosen moments and restart
the simulator, exactly as a crash or a cloud outage would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ecs_nic_operator.devenv.controlplane import free_port


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


@dataclass
class SimulatorProcess:
    seed_file: Path
    log: IO[str] | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = self.port or free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ecs_nic_operator.simulator",
                "--port",
                str(self.port),
                "--seed",
                str(self.seed_file),
            ],
            stdout=self.log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_http(f"{self.url}/_simulator/state", self.proc, 30, "simulator")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """A cloud outage and recovery: the world is rebuilt from the seed (ports attached since are lost
        only if the seed lacks them, so tests that restart it compare against state taken after)."""
        self.stop()
        self.start()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_simulator/state")
        return result

    def behaviour(self, **changes: Any) -> None:
        self._call("PUT", "/_simulator/behaviour", changes)

    def reset_counters(self) -> None:
        self._call("POST", "/_simulator/reset")

    def force_detach(self, server_id: str, port_id: str) -> None:
        self._call("DELETE", f"/_simulator/servers/{server_id}/ports/{port_id}")

    def delete_server(self, server_id: str) -> None:
        self._call("DELETE", f"/_simulator/servers/{server_id}")

    def add_server(self, server_id: str, max_nics: int = 12, state: str = "ACTIVE") -> None:
        self._call("POST", "/_simulator/servers", {"id": server_id, "maxNics": max_nics, "state": state})

    def set_server_state(self, server_id: str, state: str) -> None:
        """ACTIVE | busy | locked | stopped (see the simulator's World)."""
        self._call("PUT", f"/_simulator/servers/{server_id}", {"state": state})

    def set_credentials(self, **credentials: str | None) -> None:
        """Rotate what the simulated cloud accepts (token, accessKey, secretKey, securityToken, ...)."""
        self._call("PUT", "/_simulator/credentials", credentials)

    def add_network(self, net_id: str, subnet_id: str, cidr: str) -> None:
        self._call("POST", "/_simulator/networks", {"id": net_id, "subnetId": subnet_id, "cidr": cidr})

    def add_port(self, net_id: str, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_simulator/ports", {"netId": net_id, **extra})
        return result

    def ports_of(self, server_id: str) -> list[dict[str, Any]]:
        return list(self.state()["servers"].get(server_id, []))

    def calls_on(self, server_id: str) -> int:
        """API calls (any method) that named this server, control calls excluded."""
        return int(self.state().get("callsByServer", {}).get(server_id, 0))

    def calls(self, method: str = "") -> int:
        return sum(n for k, n in self.state()["calls"].items() if k.startswith(method))


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.metrics_port = self.metrics_port or free_port()
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the process's lifetime)
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ecs_nic_operator.cli",
                "run",
                "--all-namespaces",
                "--metrics-port",
                str(self.metrics_port),
                "--bind-address",
                "127.0.0.1",
                *self.args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics", self.proc, 60, "operator")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last status write — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text: str = resp.read().decode()
            return text

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
