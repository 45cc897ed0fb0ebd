"""Go net/rpc over Unix sockets: the sans-IO framing (``framing``), the client as a task on
our reactor (``reactor_call``), and an asyncio server (``server``, for the engine emulator
and tests)."""

from seesaw_healthcheck.rpc.framing import (
    ClientCodec,
    IncomingCall,
    Reply,
    Request,
    Response,
    RpcError,
    RpcProtocolError,
    ServerCodec,
)
from seesaw_healthcheck.rpc.server import RpcServer

__all__ = [
    "ClientCodec",
    "IncomingCall",
    "Reply",
    "Request",
    "Response",
    "RpcError",
    "RpcProtocolError",
    "RpcServer",
    "ServerCodec",
]
