"""Serve sandbox portals on loopback: one uvicorn server per payer, each in its own thread.

The server binds each socket itself (port 0 by default, so the kernel picks a free port) and
listens before uvicorn starts, so the URL is known at once; ``start`` then waits, bounded by a
deadline, for one real HTTP answer from each portal before it returns.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import uvicorn

from sandbox.faults import HideDeliberateDrops
from sandbox.middleware import CONTROL_PREFIX
from sandbox.payers import DEFAULT_SEED, get_payer, payer_ids
from sandbox.state import PortalState

log = logging.getLogger(__name__)


class SandboxError(RuntimeError):
    """A sandbox portal could not be started."""


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    url: str


def bind(host: str, port: int) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else ~40 ms a request)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    return sock


def _quiet_server_logs() -> None:
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, HideDeliberateDrops) for f in error_log.filters):
        error_log.addFilter(HideDeliberateDrops())
    error_log.setLevel(logging.WARNING)


class SandboxServer:
    """The sandbox portals of ``payers`` (all by default), with data drawn from ``seed``.

    The portals' states exist from construction, so a caller may add accounts or claims before
    ``start``; ``portal(payer)`` gives the state while they run.
    """

    def __init__(
        self,
        payers: list[str] | None = None,
        *,
        seed: int = DEFAULT_SEED,
        host: str = "127.0.0.1",
        port_base: int | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        ids = list(dict.fromkeys(payers or payer_ids()))
        self.seed = seed
        self.host = host
        self.port_base = port_base
        self.startup_timeout = startup_timeout
        self._states = {pid: PortalState(get_payer(pid), seed) for pid in ids}
        self._running: dict[str, _Running] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        if self._running:
            return self
        _quiet_server_logs()
        try:
            for index, (pid, state) in enumerate(self._states.items()):
                port = self.port_base + index if self.port_base is not None else 0
                self._running[pid] = self._launch(pid, state, bind(self.host, port))
            deadline = time.monotonic() + self.startup_timeout
            for pid, running in self._running.items():
                self._wait_ready(pid, running, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, pid: str, state: PortalState, sock: socket.socket) -> _Running:
        port = sock.getsockname()[1]
        url = f"http://{self.host}:{port}"
        state.base_url = url
        config = uvicorn.Config(
            state.payer.build_app(state),
            log_config=None,  # leave the host program's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{pid}", daemon=True
        )
        thread.start()
        return _Running(server=server, thread=thread, sock=sock, url=url)

    def _wait_ready(self, pid: str, running: _Running, deadline: float) -> None:
        """One real request: the socket already listens, so it is answered once uvicorn serves."""
        remaining = deadline - time.monotonic()
        port = running.sock.getsockname()[1]
        conn = http.client.HTTPConnection(self.host, port, timeout=max(remaining, 0.1))
        try:
            conn.request("GET", f"{CONTROL_PREFIX}/stats")
            status = conn.getresponse().status
        except OSError as exc:
            raise SandboxError(f"sandbox portal '{pid}' did not answer at {running.url}: {exc}") from None
        finally:
            conn.close()
        if status != 200:
            raise SandboxError(f"sandbox portal '{pid}' answered HTTP {status} at {running.url}")

    def stop(self) -> None:
        for running in self._running.values():
            running.server.should_exit = True
        for pid, running in self._running.items():
            running.thread.join(timeout=10)
            if running.thread.is_alive():
                log.warning("sandbox portal %s did not stop within 10 s", pid)
            running.sock.close()
        self._running.clear()

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (Ctrl-C)."""
        self.start()
        try:
            threading.Event().wait()  # woken only by KeyboardInterrupt
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- access --------------------------------------------------------------------------------

    @property
    def payers(self) -> list[str]:
        return list(self._states)

    @property
    def urls(self) -> dict[str, str]:
        """Payer id -> base URL (no trailing slash) of each running portal."""
        return {pid: running.url for pid, running in self._running.items()}

    def url(self, payer: str) -> str:
        try:
            return self._running[payer].url
        except KeyError:
            raise SandboxError(f"sandbox portal '{payer}' is not running") from None

    def portal(self, payer: str) -> PortalState:
        try:
            return self._states[payer]
        except KeyError:
            known = ", ".join(self._states)
            raise SandboxError(f"sandbox portal '{payer}' is not served here (served: {known})") from None
