"""A TCP proxy in front of a broker that cuts connections under the client (and can record
the request frames that pass, as a corpus for fuzzing).

Every ``cut_every``-th Produce request it forwards, it closes both sides right after the
request has gone to the broker and before the answer can come back: the broker writes the
batch, the client never hears so and retries it — what an idempotent producer must survive
without a duplicate. Point the broker's ``advertised.listeners`` at :attr:`port` so that the
client's every connection goes through the proxy.
"""

from __future__ import annotations

import socket
import struct
import threading

PRODUCE = 0


class CuttingProxy:
    def __init__(self, *, cut_every: int = 0, record: bool = False) -> None:
        self.cut_every = cut_every
        #: with ``record``, every request frame forwarded (length prefix included): a corpus
        self.frames: list[bytes] | None = [] if record else None
        self.upstream_port = 0
        self.cuts = 0
        self._produces = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self, upstream_port: int) -> CuttingProxy:
        self.upstream_port = upstream_port
        t = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for target, args in ((self._requests, (client, upstream)), (self._pump, (upstream, client))):
                t = threading.Thread(target=target, args=args, daemon=True)
                t.start()
                self._threads.append(t)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client → broker, frame by frame, counting Produce requests."""
        buf = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 6:
                    (size,) = struct.unpack_from(">i", buf)
                    if len(buf) < 4 + size:
                        break
                    frame, buf = buf[: 4 + size], buf[4 + size :]
                    if self.frames is not None:
                        self.frames.append(frame)
                    upstream.sendall(frame)
                    if struct.unpack_from(">h", frame, 4)[0] == PRODUCE and self._should_cut():
                        return
        except OSError:
            pass
        finally:
            self._close(client, upstream)

    def _should_cut(self) -> bool:
        with self._lock:
            self._produces += 1
            if self.cut_every and self._produces % self.cut_every == 0:
                self.cuts += 1
                return True
        return False

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src, dst)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
            with self._lock:
                self._sockets.discard(s)

    def stop(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            socks = list(self._sockets)
        self._close(*socks)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
