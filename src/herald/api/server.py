"""How `herald serve` speaks HTTP: uvicorn's h11 protocol, with Nagle's algorithm off on every connection.

asyncio turns Nagle off only on sockets whose protocol number says TCP. With `--processes` above 1, uvicorn binds
the listening socket itself without one (`proto` 0), so the connections accepted from it kept Nagle on: a response's
body waited for the client to acknowledge its headers, and clients delay that acknowledgement by up to 40 ms, so
every request took 40 ms longer with two processes than with one (webhooks: 4,500 events/s against 7,500).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that sends what it writes at once (TCP_NODELAY), however its socket was bound."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off on a TCP connection, then carry on as uvicorn does."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
