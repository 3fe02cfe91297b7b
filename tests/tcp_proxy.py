"""A loopback TCP forwarder that a test can partition: traffic is black-holed, not refused.

A real network partition does not close connections: the bytes a box sends
wait in TCP buffers and retransmissions, and neither end hears anything until
a keepalive gives up. `partition()` models that. Established connections stay
open but nothing crosses in either direction, a close on one side included;
connections opened during the partition are accepted and held but never reach
the upstream (their handshake would not have got through), and `heal()` drops
them. After `heal()` the bytes held on established connections flow again, as
TCP would deliver them.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from server.processes import free_port


@dataclass
class TcpProxy:
    """127.0.0.1:`port` forwarded to 127.0.0.1:`upstream_port`, one pair of threads per connection."""

    upstream_port: int
    port: int = field(default_factory=free_port)
    _open: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _sockets: list[socket.socket] = field(default_factory=list, init=False)
    _held: list[socket.socket] = field(default_factory=list, init=False)
    _listener: socket.socket | None = field(default=None, init=False)
    _stopped: bool = field(default=False, init=False)
    accepted: int = field(default=0, init=False)

    def start(self) -> TcpProxy:
        self._open.set()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()
        return self

    @property
    def partitioned(self) -> bool:
        return not self._open.is_set()

    def partition(self) -> None:
        """Black-hole every byte, both ways, without closing anything."""
        self._open.clear()

    def heal(self) -> None:
        """Drop the connections that never got through, then let held bytes flow again."""
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _drop(sock)
        self._open.set()

    def close(self) -> None:
        self._stopped = True
        self._open.set()  # release the threads waiting out a partition, so they can end
        with self._lock:
            sockets = [*self._sockets, *self._held]
        for sock in sockets:
            _drop(sock)
        if self._listener is not None:
            self._listener.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            client.settimeout(None)
            with self._lock:
                if self.partitioned:
                    self._held.append(client)
                    continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            _drop(client)  # nothing listens upstream: the client sees the connection closed
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets += [client, upstream]
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, target), name="proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        """Copy bytes one way; during a partition, hold them (and any close) until it heals."""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            self._open.wait()
            if not data or self._stopped:
                break
            try:
                target.sendall(data)
            except OSError:
                break
        _drop(source)
        _drop(target)


def _drop(sock: socket.socket) -> None:
    """Shut down first: that wakes a thread blocked in recv() on the socket, which close() alone does not."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
