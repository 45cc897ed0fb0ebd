"""Go net/rpc framing over one gob stream per direction, sans-IO (bytes in, values out).

A call is two gob values on the connection's single encoder: an ``rpc.Request`` header
then the arguments. A reply is an ``rpc.Response`` header then the reply value. When the
header's ``Error`` is set the body is still there (Go sends an empty struct) and is read
and dropped. Type definitions go out once per connection, so each side keeps one
``Encoder`` and one ``Decoder`` for the connection's lifetime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seesaw_healthcheck.gob import (
    NEED_DATA,
    Decoder,
    Encoder,
    Field,
    GobError,
    String,
    Struct,
    Uint,
)
from seesaw_healthcheck.gob.types import GobType


class RpcProtocolError(GobError):
    """Well-formed gob that breaks the net/rpc protocol (e.g. a reply nobody asked for)."""


@dataclass(slots=True)
class Request:
    """net/rpc's request header."""

    service_method: str = ""
    seq: int = 0


@dataclass(slots=True)
class Response:
    """net/rpc's response header; ``error`` non-empty means the call failed."""

    service_method: str = ""
    seq: int = 0
    error: str = ""


REQUEST_TYPE = Struct(
    "Request",
    [Field("ServiceMethod", String(), "service_method"), Field("Seq", Uint(64), "seq")],
    Request,
)
RESPONSE_TYPE = Struct(
    "Response",
    [
        Field("ServiceMethod", String(), "service_method"),
        Field("Seq", Uint(64), "seq"),
        Field("Error", String(), "error"),
    ],
    Response,
)
# Go's ``invalidRequest = struct{}{}``: the body of every error reply. Unnamed in gob.
EMPTY_STRUCT = Struct("", [])


@dataclass(slots=True)
class Reply:
    """One complete reply as the client sees it. ``body`` is None when ``error`` is set."""

    seq: int
    service_method: str
    error: str
    body: Any


@dataclass(slots=True)
class IncomingCall:
    """One complete request as the server sees it.

    ``known`` is False when the lookup found no args type for ``service_method``; the
    body was then decoded generically and ``args`` is None.
    """

    request: Request
    args: Any
    known: bool


class _Sender:
    """The writing half both codecs share: one encoder per connection."""

    def __init__(self) -> None:
        self._encoder = Encoder()
        self._wrote = False  # any message handed out for writing yet

    def _encode_pair(
        self, header: Any, header_type: GobType, body: Any, body_type: GobType
    ) -> bytes:
        """Header then body, all or nothing.

        The encoder rolls itself back when a value fails, but the header went first: if
        nothing was written yet, the header's type definition is now marked sent without
        ever reaching the wire, so the encoder is replaced by a fresh one. Later on the
        header type is already on the wire and encoding a header changes nothing.
        """
        head = self._encoder.encode(header, header_type)
        try:
            data = head + self._encoder.encode(body, body_type)
        except GobError:
            if not self._wrote:
                self._encoder = Encoder()
            raise
        self._wrote = True
        return data


class ClientCodec(_Sender):
    """The client half of one connection: numbers calls, matches replies by ``Seq``."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder = Decoder()
        self._next_seq = 0  # Go's client starts at 0 too
        self._reply_types: dict[int, GobType | None] = {}
        self._header: Response | None = None  # read, body still to come

    @property
    def pending(self) -> int:
        """Calls written whose reply has not been read yet."""
        return len(self._reply_types)

    @property
    def mid_message(self) -> bool:
        """True if a reply has started arriving but is not complete."""
        return self._header is not None or self._decoder.buffered > 0

    def request(
        self, service_method: str, args: Any, args_type: GobType, reply_type: GobType | None
    ) -> tuple[int, bytes]:
        """Encode one call; returns its seq and the bytes to write, in order.

        Raises ``GobError`` if ``args`` does not fit ``args_type``; the codec is then
        unchanged and stays usable.
        """
        seq = self._next_seq
        data = self._encode_pair(Request(service_method, seq), REQUEST_TYPE, args, args_type)
        self._next_seq = seq + 1
        self._reply_types[seq] = reply_type
        return seq, data

    def feed(self, data: bytes) -> None:
        self._decoder.feed(data)

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes are fed.

        Raises ``GobError`` for bytes that are not gob and ``RpcProtocolError`` for a
        reply to a seq that is not pending; the connection is unusable after either.
        """
        header = self._header
        if header is None:
            value = self._decoder.next(RESPONSE_TYPE)
            if value is NEED_DATA:
                return None
            if not isinstance(value, Response):
                raise RpcProtocolError(f"rpc: response header decoded as {type(value).__name__}")
            if value.seq not in self._reply_types:
                raise RpcProtocolError(
                    f"rpc: reply to seq {value.seq} ({value.service_method!r}), "
                    "which is not pending"
                )
            header = self._header = value
        # An error reply's body is Go's empty struct: read it generically and drop it.
        body_type = None if header.error else self._reply_types[header.seq]
        body = self._decoder.next(body_type)
        if body is NEED_DATA:
            return None
        self._header = None
        del self._reply_types[header.seq]
        if header.error:
            body = None
        return Reply(header.seq, header.service_method, header.error, body)


class ServerCodec(_Sender):
    """The server half of one connection."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder = Decoder()
        self._header: Request | None = None  # read, body still to come

    @property
    def mid_message(self) -> bool:
        """True if a request has started arriving but is not complete."""
        return self._header is not None or self._decoder.buffered > 0

    def feed(self, data: bytes) -> None:
        self._decoder.feed(data)

    def next_call(self, args_type_for: Callable[[str], GobType | None]) -> IncomingCall | None:
        """The next complete request, or None until more bytes are fed.

        ``args_type_for(service_method)`` gives the args type, or None for a method the
        server does not have: its args are then decoded generically and dropped, so the
        stream stays in step and the connection stays usable, as with Go's server.
        """
        header = self._header
        if header is None:
            value = self._decoder.next(REQUEST_TYPE)
            if value is NEED_DATA:
                return None
            if not isinstance(value, Request):
                raise RpcProtocolError(f"rpc: request header decoded as {type(value).__name__}")
            header = self._header = value
        args_type = args_type_for(header.service_method)
        args = self._decoder.next(args_type)
        if args is NEED_DATA:
            return None
        self._header = None
        if args_type is None:
            return IncomingCall(header, None, known=False)
        return IncomingCall(header, args, known=True)

    def response(
        self, request: Request, reply: Any, reply_type: GobType | None, error: str = ""
    ) -> bytes:
        """Encode the reply to ``request``; with ``error`` the body is an empty struct.

        Raises ``GobError`` if ``reply`` does not fit ``reply_type``; the codec is then
        unchanged, so an error reply can be sent instead.
        """
        header = Response(request.service_method, request.seq, error)
        if error or reply_type is None:
            return self._encode_pair(header, RESPONSE_TYPE, {}, EMPTY_STRUCT)
        return self._encode_pair(header, RESPONSE_TYPE, reply, reply_type)
