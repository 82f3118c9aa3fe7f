"""Runs the SMTP server and the web page on one asyncio loop until SIGINT or SIGTERM."""

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Generator
from pathlib import Path

import uvicorn

from tools.mail_sink.smtp import smtp_protocol
from tools.mail_sink.store import MailStore
from tools.mail_sink.web import create_app

logger = logging.getLogger(__name__)


class PortInUseError(Exception):
    """The SMTP or HTTP port is already taken, most often by a sink that is still running."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is already in use")
        self.port = port


class _WebServer(uvicorn.Server):
    """uvicorn without its own signal handling, which would re-raise the signal after shutdown
    and so end the process with a non-zero status; run() handles the signals for both servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run(host: str, smtp_port: int, http_port: int, mail_dir: Path) -> None:
    """Serve SMTP and HTTP on `host` until SIGINT or SIGTERM; raises PortInUseError if either
    port is taken, before anything starts listening."""
    with contextlib.ExitStack() as sockets:
        smtp_socket = sockets.enter_context(_bind(host, smtp_port))
        http_socket = sockets.enter_context(_bind(host, http_port))
        asyncio.run(_serve(smtp_socket, http_socket, MailStore(mail_dir)))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio only sets TCP_NODELAY on sockets that declare IPPROTO_TCP; accepted connections
    # inherit it, and without it every keep-alive HTTP response waits ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # A restart must not wait for the previous process's connections to leave TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(port) from error
        raise
    return sock


async def _serve(smtp_socket: socket.socket, http_socket: socket.socket, store: MailStore) -> None:
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(lambda: smtp_protocol(store), sock=smtp_socket)
    web_server = _WebServer(
        uvicorn.Config(create_app(store), lifespan="off", access_log=False, log_level="warning")
    )

    def stop() -> None:
        web_server.should_exit = True

    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop)
    smtp_host, smtp_port = smtp_socket.getsockname()[:2]
    http_host, http_port = http_socket.getsockname()[:2]
    logger.info(
        "SMTP on %s:%d, messages in %s, web page at http://%s:%d/",
        smtp_host,
        smtp_port,
        store.directory,
        http_host,
        http_port,
    )
    try:
        await web_server.serve(sockets=[http_socket])
    finally:
        smtp_server.close()
