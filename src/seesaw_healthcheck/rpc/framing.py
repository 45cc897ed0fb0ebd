"""Go net/rpc framing over one gob stream per direction, sans-IO (bytes in, values out).

A call is two gob values on the connection's single encoder: an ``rpc.Request`` header
then the arguments. A reply is an ``rpc.Response`` header then the reply value. When the
header's ``Error`` is set the body is still there (Go sends an empty struct) and is read
and dropped. Type definitions go out once per connection, so each side keeps one
``Encoder`` and one ``Decoder`` for the connection's lifetime.

The client side reads as Go's client does (net/rpc/client.go ``input``): a reply to a seq
that is not pending has its body read and dropped, and the connection carries on; a body
that does not decode ends the reading: that call gets "reading body <err>" (an error
reply keeps its server error, and the others get "reading error body: <err>"), every
other pending call gets the error, and no more replies are read.

The server side reads as Go's server does (tests/test_rpc_errors_go.py compares the two):
a request whose header decodes but whose args do not (wrong type, corrupt, cut short by
EOF) is answered with the decode error and the connection carries on from the next gob
message, as Go's decoder does; a header that does not decode ends the connection.

``RpcError`` is a call's error string on either side: what a server handler raises to
answer with it, what the client raises when a reply carries one.
"""

from __future__ import annotations

import re
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
from seesaw_healthcheck.gob.decoder import DEFAULT_MAX_MESSAGE, ReuseMap
from seesaw_healthcheck.gob.types import GobType

# Our decoder's errors end with the stream offset; Go's do not.
_OFFSET_SUFFIX = re.compile(r" at offset \d+$")


class RpcError(Exception):
    """The error string a server sent back for a call (``str(exc)`` is exactly it)."""


class RpcProtocolError(GobError):
    """Well-formed gob that breaks the net/rpc protocol (e.g. a header of another type)."""


class ReplyBodyError(GobError):
    """The body of the reply to pending call ``seq`` did not decode.

    ``str(exc)`` is what Go's client gives that call ("reading body <err>");
    ``stream_error`` is what it gives every other pending call (the decoder's error).
    """

    def __init__(self, seq: int, stream_error: str) -> None:
        super().__init__(f"reading body {stream_error}")
        self.seq = seq
        self.stream_error = stream_error


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
    body was then read and dropped (even if it did not decode) and ``args`` is None.
    ``error`` is set when a known method's args could not be read: Go's server answers
    at once with that text (its decoder's error) instead of calling the method.
    """

    request: Request
    args: Any
    known: bool
    error: str = ""


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

    def __init__(self, reuse: ReuseMap | None = None) -> None:
        super().__init__()
        # reuse: unchanged entries of a reply's uint-keyed map keep the objects of the last
        # reply decoded with it (see gob.ReuseMap)
        self._decoder = Decoder(reuse=reuse)
        self._next_seq = 0  # Go's client starts at 0 too
        self._reply_types: dict[int, GobType | None] = {}
        self._header: Response | None = None  # read, body still to come
        self._pending_header = False  # _header's seq was pending when it came
        self._broken: GobError | None = None  # no more replies: raised again

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

        As Go's client: a reply to a seq that is not pending is read and dropped. Raises
        ``GobError`` when a header does not decode; ``ReplyBodyError`` when the body of a
        pending call's reply does not; ``GobError`` ("reading error body: ...") when the
        body of an error reply, or of a reply to no pending call, does not (an error
        reply is returned first: that call keeps its server error). Nothing more is read
        after any of them; ``next_reply`` raises the last error again.
        """
        if self._broken is not None:
            raise self._broken
        while True:
            header = self._header
            if header is None:
                try:
                    value = self._decoder.next(RESPONSE_TYPE)
                except GobError as exc:
                    self._broken = exc
                    raise
                if value is NEED_DATA:
                    return None
                if not isinstance(value, Response):
                    self._broken = RpcProtocolError(
                        f"rpc: response header decoded as {type(value).__name__}"
                    )
                    raise self._broken
                header = self._header = value
                # Go takes the call off its pending list before reading the body.
                self._pending_header = value.seq in self._reply_types
            pending = self._pending_header
            # An error reply's body is Go's empty struct, and one to no pending call is
            # dropped: either is read generically (Go's Decode(nil)).
            body_type = self._reply_types[header.seq] if pending and not header.error else None
            try:
                body = self._decoder.next(body_type)
            except GobError as exc:
                self._header = None
                if pending:
                    del self._reply_types[header.seq]
                text = _OFFSET_SUFFIX.sub("", str(exc))
                if pending and not header.error:
                    self._broken = GobError(text)
                    raise ReplyBodyError(header.seq, text) from None
                self._broken = GobError(f"reading error body: {text}")
                if pending:  # the call has its answer; the error comes next time
                    return Reply(header.seq, header.service_method, header.error, None)
                raise self._broken from None
            if body is NEED_DATA:
                return None
            self._header = None
            if not pending:
                continue  # a reply nobody waits for: dropped, as by Go's client
            del self._reply_types[header.seq]
            if header.error:
                body = None
            return Reply(header.seq, header.service_method, header.error, body)


# Go's words for the errors its gob decoder reports while reading a message's length.
_EOF = "EOF"
_UNEXPECTED_EOF = "unexpected EOF"
_BAD_UINT = "gob: encoded unsigned integer out of range"
_BAD_COUNT = "invalid message length"
_TOO_BIG = 1 << 33  # Go's tooBig on 64-bit: a length at or past it is _BAD_COUNT
# Type definitions kept per connection to rebuild the decoder after a bad request (a
# Seesaw client sends about 1 KiB). Past this a bad request closes the connection.
MAX_REPLAY = 32 << 10


class _Failed(Exception):
    """One ``Decode`` of Go's failed with ``text``; the stream is where Go's would be."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _defines_type(message: bytes, header_len: int) -> bool:
    """True if the message's first int (its type id) is negative: a type definition."""
    b = message[header_len]
    if b < 0x80:
        return bool(b & 1)
    last = header_len + 256 - b
    return 256 - b <= 8 and last < len(message) and bool(message[last] & 1)


class ServerCodec(_Sender):
    """The server half of one connection.

    Bytes are split into gob messages here and handed to the decoder one whole message at
    a time, so that a failed decode can be dropped at a message boundary the way Go's
    decoder drops the rest of its buffer. Our decoder's errors are final, so after one
    the decoder is rebuilt from the type definitions the connection sent so far (Go keeps
    the types it received, including those of a value that then failed). Only the
    definitions sent as messages of their own are kept for that; those Go sends inside a
    value (for an interface inside an interface) are not, so after a bad request a later
    one relying on them fails where Go's would not. Seesaw's engine calls carry no
    interfaces.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        super().__init__()
        self._max = max_message
        self._decoder = Decoder(max_message)
        self._raw = bytearray()  # received, not yet handed to the decoder
        self._off = 0  # start of those bytes in _raw
        self._abs = 0  # stream offset of _raw[0]
        self._message_at = 0  # stream offset of the message last framed
        self._header: Request | None = None  # read, body still to come
        self._args_type: GobType | None = None  # for _header's method; None: unknown
        self._body_start = 0  # stream offset just past _header
        self._fed = 0  # bytes handed to the current decoder
        self._defs: list[bytes] = []  # definitions the decoder took, in order
        self._defs_size = 0
        self._replayable = True

    @property
    def mid_message(self) -> bool:
        """True if a request has started arriving but is not complete."""
        return self._header is not None or len(self._raw) > self._off or self._decoder.buffered > 0

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet handed to the decoder."""
        return self._abs + self._off

    def feed(self, data: bytes) -> None:
        self._raw += data

    def next_call(self, args_type_for: Callable[[str], GobType | None]) -> IncomingCall | None:
        """The next complete request, or None until more bytes are fed.

        ``args_type_for(service_method)`` gives the args type, or None for a method the
        server does not have: its args are then read and dropped, so the stream stays in
        step and the connection stays usable, as with Go's server. Args that fail to
        decode give an ``IncomingCall`` with ``error`` set. Raises ``GobError`` when the
        request header cannot be read: Go's server then reads no more from the
        connection (it answers the calls already running, then closes).
        """
        header = self._header
        if header is None:
            try:
                value = self._read_value(REQUEST_TYPE)
            except _Failed as failed:
                raise GobError(
                    f"rpc: server cannot decode request: {failed.text} "
                    f"(gob message at byte {self._message_at})"
                ) from None
            if value is NEED_DATA:
                return None
            if not isinstance(value, Request):
                raise RpcProtocolError(f"rpc: request header decoded as {type(value).__name__}")
            header = self._header = value
            self._args_type = args_type_for(header.service_method)
            self._body_start = self.offset
        known = self._args_type is not None
        try:
            args = self._read_value(self._args_type)
        except _Failed as failed:
            self._header = None
            return IncomingCall(header, None, known, failed.text if known else "")
        if args is NEED_DATA:
            return None
        self._header = None
        return IncomingCall(header, args if known else None, known)

    def eof(self) -> IncomingCall | None:
        """The client sent its last byte; call once ``next_call`` has returned None.

        As Go's server: a request whose header arrived gets an answer, "EOF" (no byte of
        its args came) or "unexpected EOF" for a known method, the lookup error for an
        unknown one. A partial header gets none (None).
        """
        header, self._header = self._header, None
        if header is None:
            return None
        if self._args_type is None:
            return IncomingCall(header, None, known=False)
        received = self._abs + len(self._raw)
        error = _UNEXPECTED_EOF if received > self._body_start else _EOF
        return IncomingCall(header, None, known=True, error=error)

    # -- Go's Decoder.Decode, a whole message at a time --

    def _read_value(self, type: GobType | None) -> Any:
        """Type definitions then one value, as Go's ``Decode``; NEED_DATA until complete.

        Raises ``_Failed`` where Go's ``Decode`` returns an error, having consumed what
        Go consumes; the decoder is usable again. Raises ``GobError`` for a message over
        the size limit (Go would wait for its bytes) or a decoder we cannot rebuild.
        """
        while True:
            self._message_at = self.offset
            try:
                framed = self._next_message()
            except _Failed:
                if self._decoder.buffered:  # a value that spans messages, cut off
                    self._reset_decoder()
                raise
            if framed is None:
                return NEED_DATA
            message, header_len = framed
            self._fed += len(message)
            self._decoder.feed(message)
            try:
                value = self._decoder.next(type)
            except GobError as exc:
                self._reset_decoder()
                raise _Failed(_OFFSET_SUFFIX.sub("", str(exc))) from None
            if value is not NEED_DATA:
                return value
            if self._decoder.offset == self._fed and _defines_type(message, header_len):
                self._keep(message)  # a definition, taken on its own

    def _next_message(self) -> tuple[bytes, int] | None:
        """The next whole gob message (length prefix included) and its prefix's length, or
        None until it is all in."""
        raw, off = self._raw, self._off
        avail = len(raw) - off
        if avail == 0:
            return None
        b = raw[off]
        if b < 0x80:
            n, header_len = b, 1
        else:
            count = 256 - b
            if count > 8:
                self._consume(1)
                raise _Failed(_BAD_UINT)
            if avail < 1 + count:
                return None
            n, header_len = int.from_bytes(raw[off + 1 : off + 1 + count], "big"), 1 + count
        if n >= _TOO_BIG:
            self._consume(header_len)
            raise _Failed(_BAD_COUNT)
        if n > self._max:
            raise GobError(
                f"rpc: message of {n} bytes at byte {self.offset} exceeds the limit of {self._max}"
            )
        if n == 0:  # Go reads no type id from it: EOF
            self._consume(header_len)
            raise _Failed(_EOF)
        if avail < header_len + n:
            return None
        message = bytes(raw[off : off + header_len + n])
        self._consume(header_len + n)
        return message, header_len

    def _consume(self, n: int) -> None:
        self._off += n
        if self._off > 65536 and self._off * 2 > len(self._raw):
            del self._raw[: self._off]
            self._abs += self._off
            self._off = 0

    def _keep(self, definition: bytes) -> None:
        """Keep a definition the decoder took, to replay after a failure; up to a limit."""
        if not self._replayable:
            return
        self._defs_size += len(definition)
        if self._defs_size > MAX_REPLAY:
            self._replayable = False
            self._defs = []
        else:
            self._defs.append(definition)

    def _reset_decoder(self) -> None:
        """A fresh decoder that knows the types the connection defined so far."""
        if not self._replayable:
            raise GobError(
                f"rpc: over {MAX_REPLAY} bytes of type definitions on this connection: "
                "cannot recover from a bad request"
            )
        decoder = Decoder(self._max)
        replay = b"".join(self._defs)
        if replay:
            decoder.feed(replay)
            if decoder.next(None) is not NEED_DATA or decoder.buffered:
                raise GobError("rpc: replaying the type definitions went wrong")
        self._decoder = decoder
        self._fed = len(replay)

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
