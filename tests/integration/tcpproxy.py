"""A TCP forwarder that can be cut like a network partition: while blocked, bytes stay where they are (no
reset, no error), so the client's requests just hang, as they do when packets are dropped."""

from __future__ import annotations

import contextlib
import socket
import threading

from ecs_nic_operator.devenv.controlplane import free_port


class TcpProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._closing = False
        self._sockets: list[socket.socket] = []
        self._gates: list[threading.Event] = []  # one per connection: cleared, that connection goes silent
        self._listener = socket.create_server((host, self.port))
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def block(self) -> None:
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def freeze_open(self) -> None:
        """Every connection open now goes silent for good (a NAT entry dropped, a half-dead peer); new
        connections pass. A client without a read timeout waits on a frozen one for ever."""
        for gate in self._gates:
            gate.clear()

    def close_open(self) -> None:
        """Reset every connection open now (what they held is lost); the proxy keeps accepting new ones."""
        sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closing = True
        self._open.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(downstream,), daemon=True).start()

    def _connect(self, downstream: socket.socket) -> None:
        self._open.wait()  # a new connection during a partition hangs before it reaches the server
        try:
            upstream = socket.create_connection((self.host, self.upstream_port))
        except OSError:
            downstream.close()
            return
        self._sockets += [downstream, upstream]
        gate = threading.Event()
        gate.set()
        self._gates.append(gate)
        for src, dst in ((downstream, upstream), (upstream, downstream)):
            threading.Thread(target=self._pump, args=(src, dst, gate), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gate: threading.Event) -> None:
        try:
            while True:
                data = src.recv(65536)
                self._open.wait()  # held, not dropped: the peer sees silence
                gate.wait()
                if not data or self._closing:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
