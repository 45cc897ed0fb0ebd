"""TLS for the TCP and HTTP checkers: one client context per verify mode, reused.

Building an ``SSLContext`` (and loading the system trust store) costs milliseconds, so
contexts are made once and shared by every check. Like Go's ``crypto/tls`` client, the
minimum version is TLS 1.2; with verification on, the certificate must chain to a trusted
root and name the server (for an IP target: an IP SAN, as Go checks it).
"""

from __future__ import annotations

import socket
import ssl

from seesaw_healthcheck.checkers.base import CheckError
from seesaw_healthcheck.reactor import readable, writable

__all__ = ["context", "handshake", "ssl_error_text", "trust"]

_contexts: dict[bool, ssl.SSLContext] = {}
_extra_cafiles: list[str] = []


def trust(cafile: str | None) -> None:
    """Also trust the CA certificates in ``cafile`` (None: only the system store again)."""
    _extra_cafiles.clear()
    if cafile is not None:
        _extra_cafiles.append(cafile)
    _contexts.clear()


def context(verify: bool) -> ssl.SSLContext:
    ctx = _contexts.get(verify)
    if ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if verify:
            ctx.load_default_certs()
            for cafile in _extra_cafiles:
                ctx.load_verify_locations(cafile=cafile)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _contexts[verify] = ctx
    return ctx


# OpenSSL verify codes that Go reports as an unknown authority.
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}


def ssl_error_text(error: BaseException, server_name: str) -> str:
    """Go-like text for a TLS failure (``x509: certificate signed by unknown authority``)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNKNOWN_AUTHORITY:
            return "x509: certificate signed by unknown authority"
        if code in (9, 10):
            return "x509: certificate has expired or is not yet valid"
        if code in (62, 64):  # hostname or IP address mismatch
            return f"x509: certificate is not valid for {server_name}"
        return f"x509: {error.verify_message}"
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "EOF"
    if isinstance(error, ssl.SSLError):
        reason = error.reason or str(error)
        return f"tls: {reason.lower().replace('_', ' ')}"
    if isinstance(error, OSError) and error.errno is not None:
        text = error.strerror or str(error)
        return text[:1].lower() + text[1:]
    return str(error) or type(error).__name__


async def handshake(sock: socket.socket, verify: bool, server_name: str) -> ssl.SSLSocket:
    """TLS client handshake on a connected non-blocking socket, awaited on the reactor.

    The returned ``SSLSocket`` owns the file descriptor (``sock`` is detached); on failure
    it is closed and ``CheckError`` (or the reactor's ``TimeoutError``) is raised.
    """
    try:
        if sock.gettimeout() != 0.0:
            # e.g. socket.socket(fileno=...) starts in blocking mode: the handshake would
            # block the whole reactor on a silent peer.
            sock.setblocking(False)
        tls = context(verify).wrap_socket(
            sock, server_hostname=server_name, do_handshake_on_connect=False
        )
    except (ssl.SSLError, OSError, ValueError) as error:
        sock.close()
        raise CheckError(ssl_error_text(error, server_name)) from None
    try:
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                await readable(tls)
            except ssl.SSLWantWriteError:
                await writable(tls)
    except TimeoutError:  # the reactor's deadline (an OSError too: keep it apart)
        tls.close()
        raise
    except (ssl.SSLError, OSError) as error:
        tls.close()
        raise CheckError(ssl_error_text(error, server_name)) from None
    except BaseException:
        tls.close()
        raise
