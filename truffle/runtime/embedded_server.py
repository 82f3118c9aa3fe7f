"""uvicorn inside a process's own event loop, for the small apps a process serves beside its
main work: the worker's `/metrics` and probes, the API's operator listener. The process, not
uvicorn, handles signals; the server stops when the block ends."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def embedded_serving(
    config: uvicorn.Config, what: str, sockets: list[socket.socket] | None = None
) -> AsyncIterator[None]:
    """Serves `config`'s app (on `sockets` when given, else on its host and port) until the
    block ends; `what` names the server in the error raised when it stops while starting."""
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()  # the port could not be bound: say why
            raise RuntimeError(f"{what} stopped while starting")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
