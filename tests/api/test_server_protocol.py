"""`herald serve`'s HTTP protocol turns Nagle's algorithm off on connections accepted from any listening socket."""

from __future__ import annotations

import asyncio
import socket

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from herald.api.server import NoDelayH11Protocol


async def _nodelay_of_accepted(protocol_class: type[H11Protocol]) -> int:
    config = Config(app=lambda *_: None, host="127.0.0.1", port=0, workers=2)
    config.load()
    # As uvicorn binds it for several processes: protocol number 0, so asyncio leaves Nagle on.
    listening = config.bind_socket()
    assert listening.proto == 0
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Probe(protocol_class):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    state = ServerState()
    server = await loop.create_server(lambda: Probe(config, state, {}), sock=listening)
    try:
        port = listening.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await accepted
        finally:
            writer.close()
    finally:
        server.close()
        for connection in list(state.connections):
            connection.transport.close()


def test_connections_send_at_once() -> None:
    assert asyncio.run(_nodelay_of_accepted(NoDelayH11Protocol)) != 0


def test_uvicorns_own_protocol_would_not() -> None:
    """The reason for the class: if uvicorn ever sets it itself, this fails and the class can go."""
    if asyncio.run(_nodelay_of_accepted(H11Protocol)) != 0:
        pytest.fail("uvicorn now turns Nagle off itself: NoDelayH11Protocol is no longer needed")
