"""Go net/rpc over Unix sockets: sans-IO framing plus an asyncio client and server."""

from seesaw_healthcheck.rpc.client import RpcClient, call
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
    "RpcClient",
    "RpcError",
    "RpcProtocolError",
    "RpcServer",
    "ServerCodec",
    "call",
]
