"""Regenerate the fuzz targets' seed corpus, ``tests/fuzz/corpus/<target>/``.

    .venv/bin/python tests/fuzz/make_corpus.py     # needs Go (make go): gopeer is built

Every file comes from a real writer, deterministically (the same bytes every run):

- gob: Go's encoder (``gopeer golden``, the cases whose bytes do not depend on Go's map
  order) and ours (the recipe configs and notifications of ``tests/gopeer.py``);
- net/rpc: what Go's ``net/rpc`` server (``gopeer engine``) answers to calls we send, and
  what Go's client (``gopeer client -golden-context``) sends to a server of ours, captured
  off the Unix socket; and the same conversations written by our codecs;
- HTTP responses by hand, DNS replies with dnspython, RADIUS replies with pyrad, ICMP
  echo replies with the checker's own builder, the TOML example and a few variations.

The directory of each target is emptied first, so a file nobody writes any more goes.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pyrad.packet

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.checkers.ping import build_echo_request, icmp_checksum
from seesaw_healthcheck.gob import Encoder, GobType
from seesaw_healthcheck.rpc.framing import ClientCodec, Request, ServerCodec

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(HERE), str(REPO)]  # the fuzz targets, and tests.* from the repo root

import fuzz_dns_reply  # noqa: E402
import fuzz_gob_typed  # noqa: E402
import fuzz_icmp_reply  # noqa: E402
import fuzz_radius_reply  # noqa: E402
from tests import gopeer  # noqa: E402
from tests.responders.radius import dictionary  # noqa: E402

CORPUS = HERE / "corpus"
MAX_GOLDEN = 2048  # bytes: the big Go cases add nothing the small ones lack
IO_TIMEOUT = 10.0

Files = dict[str, bytes]

# --- gob ------------------------------------------------------------------------------

# Go golden case -> the type fuzz_gob_typed decodes it into (an index into its TYPES).
_TYPED = {
    "checks_": schema.CHECKS,
    "health_state": schema.HEALTH_STATE,
    "ipc_context": schema.CONTEXT_ARG,
    "rpc_request": fuzz_gob_typed.REQUEST_TYPE,
    "rpc_response": fuzz_gob_typed.RESPONSE_TYPE,
    "int_": schema.INT_REPLY,
}

GOLDEN_CONTEXT = model.Context(
    auth_type=model.AuthType.TRUSTED,
    peer=model.Peer(component=model.Component.HEALTHCHECK, identity="healthcheck [pid 4242]"),
    user=model.User(uid="1000", username="seesaw"),
)


def go_golden() -> Files:
    """Go's deterministic golden streams, by case name."""
    with tempfile.TemporaryDirectory() as out:
        gopeer.run(["golden", out], timeout=120)
        varying = set(Path(out, "nondeterministic.txt").read_text().split())
        return {
            path.stem: path.read_bytes()
            for path in sorted(Path(out).glob("*.gob"))
            if path.stem not in varying and path.stat().st_size <= MAX_GOLDEN
        }


def our_gob() -> list[tuple[str, bytes, GobType]]:
    """Streams our encoder writes: (name, bytes, the type written)."""
    notes = [gopeer.recipe_notification(i) for i in (1, 2)]
    values: list[tuple[str, Any, GobType]] = [
        ("checks_recipe_6", gopeer.recipe_checks(6), schema.CHECKS),
        ("checks_nil", model.Checks(), schema.CHECKS),
        ("config_dns", gopeer.recipe_config(3), schema.CONFIG),
        (
            "health_state",
            model.HealthState(ctx=GOLDEN_CONTEXT, notifications=notes),
            schema.HEALTH_STATE_ARG,
        ),
        ("context", GOLDEN_CONTEXT, schema.CONTEXT_ARG),
        ("notification", notes[0], schema.NOTIFICATION),
        ("status", notes[1].status, schema.STATUS),
        ("int_reply", 0, schema.INT_REPLY),
    ]
    return [(name, Encoder().encode(value, t), t) for name, value, t in values]


def gob_corpora(golden: Files) -> tuple[Files, Files]:
    """(fuzz_gob_typed's files: selector byte + stream, fuzz_gob_generic's: the stream)."""
    typed: Files = {}
    generic: Files = {f"go_{name}": data for name, data in golden.items()}
    for name, data in golden.items():
        for prefix, t in _TYPED.items():
            if name.startswith(prefix):
                typed[f"go_{name}"] = selector(t) + data
    for name, data, t in our_gob():
        typed[f"py_{name}"] = selector(t) + data
        generic[f"py_{name}"] = data
    # One stream decoded as a type it is not: the mismatch paths.
    typed["go_checks_tcp_as_health_state"] = selector(schema.HEALTH_STATE) + golden["checks_tcp"]
    return typed, generic


def selector(t: GobType, cut_sixteenths: int = 8) -> bytes:
    return fuzz_gob_typed.selector(fuzz_gob_typed.TYPES.index(t), cut_sixteenths)


# --- net/rpc: Go's server answering us ---------------------------------------------------

UNTRUSTED = model.Context(auth_type=model.AuthType.UNTRUSTED)


def _calls() -> list[tuple[str, Any, GobType, GobType | None]]:
    """The calls of fuzz_rpc_client's codec, in its seq order (0, 1, 2)."""
    state = model.HealthState(ctx=GOLDEN_CONTEXT, notifications=[gopeer.recipe_notification(1)])
    return [
        (schema.HEALTHCHECKS, GOLDEN_CONTEXT, schema.CONTEXT_ARG, schema.CHECKS),
        (schema.HEALTH_STATE_METHOD, state, schema.HEALTH_STATE_ARG, schema.INT_REPLY),
        ("Other.Method", 7, schema.INT_REPLY, None),
    ]


def _converse(path: str, calls: Iterable[tuple[str, Any, GobType, GobType | None]]) -> bytes:
    """Make ``calls`` one after the other on one connection; every byte the server sent."""
    codec = ClientCodec()
    received = bytearray()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(IO_TIMEOUT)
        conn.connect(path)
        for method, args, args_type, reply_type in calls:
            _, data = codec.request(method, args, args_type, reply_type)
            conn.sendall(data)
            while (reply := codec.next_reply()) is None:
                chunk = conn.recv(65536)
                if not chunk:
                    raise RuntimeError(f"{method}: the Go engine closed the connection")
                received += chunk
                codec.feed(chunk)
            if reply.error and reply_type is not None and args is not UNTRUSTED:
                raise RuntimeError(f"{method}: the Go engine answered {reply.error!r}")
    return bytes(received)


def go_server_replies() -> Files:
    with tempfile.TemporaryDirectory(prefix="corpus-", dir="/tmp") as tmp:
        path = f"{tmp}/engine.sock"
        with gopeer.GoEngine(path, configs=1, port=8080):
            return {
                "go_three_calls": _converse(path, _calls()),
                "go_untrusted": _converse(
                    path, [(schema.HEALTHCHECKS, UNTRUSTED, schema.CONTEXT_ARG, schema.CHECKS)]
                ),
            }


def our_server_replies() -> Files:
    codec = ServerCodec()
    data = codec.response(Request(schema.HEALTHCHECKS, 0), gopeer.recipe_checks(3), schema.CHECKS)
    data += codec.response(Request(schema.HEALTH_STATE_METHOD, 1), 0, schema.INT_REPLY)
    data += codec.response(
        Request("Other.Method", 2), None, None, error="rpc: can't find service Other.Method"
    )
    return {"py_three_calls": data}


# --- net/rpc: Go's client calling us --------------------------------------------------


class _CaptureServer:
    """A net/rpc server of ours on a Unix socket that keeps every byte each connection
    sent; answers the two engine methods with the recipe (``gopeer client``'s checks)."""

    def __init__(self, path: str, configs: int) -> None:
        self.configs = configs
        self.streams: list[bytes] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(4)
        self.listener.settimeout(IO_TIMEOUT)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.error: BaseException | None = None

    def _serve(self) -> None:
        try:
            while True:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return  # closed
                with conn:
                    self._one(conn)
        except BaseException as error:  # reported by the caller
            self.error = error

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        codec = ServerCodec()
        sent = bytearray()
        types = {
            schema.HEALTHCHECKS: schema.CONTEXT_ARG,
            schema.HEALTH_STATE_METHOD: schema.HEALTH_STATE_ARG,
        }
        while (call := codec.next_call(types.get)) is None:
            chunk = conn.recv(65536)
            if not chunk:
                raise RuntimeError("gopeer client closed before a whole call")
            sent += chunk
            codec.feed(chunk)
        self.streams.append(bytes(sent))
        if call.request.service_method == schema.HEALTHCHECKS:
            reply = codec.response(call.request, gopeer.recipe_checks(self.configs), schema.CHECKS)
        else:
            reply = codec.response(call.request, 0, schema.INT_REPLY)
        conn.sendall(reply)

    def __enter__(self) -> _CaptureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(IO_TIMEOUT)


def go_client_requests() -> Files:
    with tempfile.TemporaryDirectory(prefix="corpus-", dir="/tmp") as tmp:
        path = f"{tmp}/engine.sock"
        with _CaptureServer(path, configs=2) as server:
            gopeer.run(["client", "-socket", path, "-n", "2", "-golden-context"], timeout=60)
        if server.error is not None:
            raise server.error
    healthchecks, health_state = server.streams
    return {"go_healthchecks": healthchecks, "go_health_state": health_state}


def our_client_requests() -> Files:
    codec = ClientCodec()
    data = b"".join(codec.request(*call)[1] for call in _calls())
    return {"py_three_calls": data}


# --- HTTP -----------------------------------------------------------------------------


def http_responses() -> Files:
    body = b"ok, all good\n"
    packed = gzip.compress(body, mtime=0)
    return {
        "200_length": b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + body,
        "200_chunked": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nok, a\r\n8\r\nll good\n\r\n0\r\n\r\n"
        ),
        "200_gzip": (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
            + str(len(packed)).encode()
            + b"\r\n\r\n"
            + packed
        ),
        "200_gzip_chunked": (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(packed)
            + packed
            + b"\r\n0\r\n\r\n"
        ),
        "200_to_eof": b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n" + body,
        "100_then_200": (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ),
        "204": b"HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
        "302_location": b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        "503_lf_only": b"HTTP/1.1 503 Service Unavailable\nContent-Length: 4\n\ndown",
        "bad_status": b"HTTP/1.1 2x0 Odd\r\n\r\n",
        "bad_header": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    }


# --- DNS ------------------------------------------------------------------------------


def dns_replies() -> Files:
    def reply(
        name: str,
        qtype: int,
        answers: list[str],
        *,
        rcode: int = 0,
        tc: bool = False,
        query_id: int = 0x4242,
    ) -> bytes:
        query = dns.message.make_query(name, qtype)
        query.id = query_id
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        if tc:
            response.flags |= dns.flags.TC
        for text in answers:
            response.answer.append(dns.rrset.from_text(name, 300, "IN", qtype, text))
        return response.to_wire()

    files = {}
    for i, (name, qtype, answer) in enumerate(fuzz_dns_reply.QUESTIONS):
        if qtype in (1, 28):
            rdata = answer if qtype == 1 or ":" in answer else f"::ffff:{answer}"
        elif qtype == 16:
            rdata = f'"{answer}"'
        else:  # names in the answers as written, made absolute
            rdata = " ".join(w + "." if w.endswith(".com") else w for w in answer.split())
        files[f"match_{i}_type{qtype}"] = reply(name, qtype, [rdata])
    files["mismatch_a"] = reply("example.com.", 1, ["192.0.2.9", "192.0.2.10"])
    files["nxdomain"] = reply("example.com.", 1, [], rcode=dns.rcode.NXDOMAIN)
    files["truncated"] = reply("example.com.", 1, [], tc=True)
    files["no_answers"] = reply("example.com.", 28, [])
    return files


# --- RADIUS ---------------------------------------------------------------------------


def radius_replies() -> Files:
    files = {}
    codes = {
        "accept": pyrad.packet.AccessAccept,
        "reject": pyrad.packet.AccessReject,
        "challenge": pyrad.packet.AccessChallenge,
    }
    for name, code in codes.items():
        request = pyrad.packet.AuthPacket(
            id=42,
            secret=fuzz_radius_reply.SECRET,
            authenticator=fuzz_radius_reply.REQUEST_AUTHENTICATOR,
            dict=dictionary(),
        )
        response = request.CreateReply()
        response.code = code
        response["Reply-Message"] = f"{name} for fuzzing"
        files[name] = response.ReplyPacket()
    return files


# --- ICMP -----------------------------------------------------------------------------


def _echo_reply(ipv6: bool, identifier: int, sequence: int, token: bytes) -> bytes:
    packet = bytearray(build_echo_request(ipv6, identifier, sequence, token))
    packet[0] = 129 if ipv6 else 0
    if not ipv6:
        packet[2:4] = b"\x00\x00"
        packet[2:4] = struct.pack("!H", icmp_checksum(bytes(packet)))
    return bytes(packet)


def _ipv4_header(payload: bytes) -> bytes:
    source, destination = socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.100")
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 1, 0, source, destination
    )
    return header[:10] + struct.pack("!H", icmp_checksum(header)) + header[12:]


def icmp_inputs() -> Files:
    m = fuzz_icmp_reply

    def framed(flags: int, packets: list[bytes]) -> bytes:
        return bytes((flags,)) + b"".join(struct.pack("!H", len(p)) + p for p in packets)

    v4 = _echo_reply(False, m.IDENT, m.SEQUENCE, m.TOKEN)
    v6 = _echo_reply(True, m.IDENT, m.SEQUENCE, m.TOKEN)
    other = _echo_reply(False, m.IDENT, m.SEQUENCE + 1, m.TOKEN)
    bad_sum = v4[:2] + bytes((v4[2] ^ 0xFF,)) + v4[3:]
    return {
        "v4_dgram": framed(0, [v4]),
        "v4_raw": framed(2, [_ipv4_header(v4) + v4]),
        "v6": framed(1, [v6]),
        "v4_wrong_seq_then_right": framed(0, [other, v4]),
        "v4_bad_checksum": framed(0, [bad_sum]),
        "v4_stranger": framed(4, [v4]),
    }


# --- TOML -----------------------------------------------------------------------------

EVERY_TYPE = """\
[defaults]
interval = "2s"
timeout = "1s"
retries = 3

[[check]]
id = 7
type = "http"
ip = "::1"
port = 80
request = "/healthz"
response_code = 204

[[check]]
type = "https"
ip = "10.0.0.1"
port = 443
mode = "dsr"
host = "10.0.0.2"
mark = 9
tls_verify = false

[[check]]
type = "tcp_tls"
ip = "127.0.0.1"
port = 993
send = "a"
receive = "b"

[[check]]
name = "dns-1"
type = "dns"
ip = "127.0.0.1"
port = 53
query = "www.example.com."
query_type = "aaaa"
answer = "::1"

[[check]]
type = "udp"
ip = "127.0.0.1"
port = 514
send = "x"
receive = "y"

[[check]]
type = "radius"
ip = "127.0.0.1"
port = 1812
username = "u"
password = "p"
secret = "s"

[[check]]
type = "ping"
ip = "127.0.0.1"
interval = "10s"
"""


def toml_files() -> Files:
    return {
        "demo.toml": (REPO / "examples" / "demo.toml").read_bytes(),
        "every_type.toml": EVERY_TYPE.encode(),
        "invalid_values.toml": (
            b"[[check]]\ntype = 'tcp'\nip = 'nowhere'\nport = 80\n"
            b"interval = '0s'\ntimeout = '-1s'\n"
        ),
    }


# --- writing --------------------------------------------------------------------------


def write(target: str, files: Files) -> int:
    directory = CORPUS / target
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name, data in sorted(files.items()):
        (directory / name).write_bytes(data)
    return sum(len(d) for d in files.values())


def main() -> int:
    golden = go_golden()
    typed, generic = gob_corpora(golden)
    makers: dict[str, Callable[[], Files]] = {
        "gob_typed": lambda: typed,
        "gob_generic": lambda: generic,
        "rpc_client": lambda: {**go_server_replies(), **our_server_replies()},
        "rpc_server": lambda: {**go_client_requests(), **our_client_requests()},
        "http_response": http_responses,
        "dns_reply": dns_replies,
        "radius_reply": radius_replies,
        "icmp_reply": icmp_inputs,
        "engine_toml": toml_files,
    }
    total = 0
    for target, make in makers.items():
        files = make()
        size = write(target, files)
        total += size
        digest = hashlib.sha256(b"".join(files[k] for k in sorted(files))).hexdigest()[:12]
        print(f"{target:14} {len(files):3} files {size:7} bytes  sha256 {digest}")
    print(f"{'total':14} {total:17} bytes in {CORPUS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (gopeer.GoPeerError, subprocess.SubprocessError) as error:
        print(f"make_corpus: {error}", file=sys.stderr)
        sys.exit(1)
