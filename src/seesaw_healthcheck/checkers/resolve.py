"""Host-name lookups for checks, off the reactor thread.

Only an HTTP check whose ``request`` is an absolute URL naming a host (in PLAIN mode) needs
one: Go's Transport resolves and dials that name. ``getaddrinfo`` blocks, so it runs on a
small thread pool and the check awaits the answer; the check's deadline still bounds it.
Answers (and failures) are kept for ``TTL_S`` so checks every second do not query the
resolver every second (Go's resolver keeps /etc/hosts for 5 s, but not DNS answers).

The pool and the answers belong to the reactor the checks run on: made on its first
lookup, gone when it closes (``Reactor.on_close``), so no thread outlives its loop.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from seesaw_healthcheck.checkers.base import CheckError
from seesaw_healthcheck.checkers.dial import Endpoint, endpoint
from seesaw_healthcheck.model import Target, ip_to_bytes
from seesaw_healthcheck.reactor import Future, Reactor, current_reactor

__all__ = ["TTL_S", "resolve_tcp"]

TTL_S = 5.0
_MAX_CACHED = 4096
_WORKERS = 4

Answer = tuple[Endpoint, ...] | CheckError


class _Resolver:
    """A reactor's lookup threads and the answers they gave: (name, port) -> (expiry on
    the monotonic clock, answer)."""

    def __init__(self, reactor: Reactor) -> None:
        self.pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="resolve")
        self.cache: dict[tuple[str, int], tuple[float, Answer]] = {}
        reactor.on_close(self.close)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.cache.clear()


_RESOLVER: Final = object()  # the key of a reactor's _Resolver in its run_vars


def _lookup(name: str, port: int) -> tuple[Endpoint, ...] | CheckError:
    """In a pool thread: the name's addresses in the resolver's order (RFC 6724)."""
    try:
        infos = socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except socket.gaierror as error:
        if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
            return CheckError(f"lookup {name}: no such host")
        return CheckError(f"lookup {name}: {error.strerror or error}")
    except Exception as error:  # OSError, UnicodeError (a bad name), ...
        return CheckError(f"lookup {name}: {error}")
    found: list[Endpoint] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ep = endpoint(Target(ip=ip_to_bytes(str(sockaddr[0]).partition("%")[0]), port=port))
        if ep not in found:
            found.append(ep)
    if not found:
        return CheckError(f"lookup {name}: no such host")
    return tuple(found)


async def resolve_tcp(name: str, port: int) -> tuple[Endpoint, ...]:
    """The endpoints to dial for ``name:port``, first choice first; ``CheckError`` with
    Go's ``lookup NAME: ...`` text when there are none."""
    key = (name, port)
    now = time.monotonic()
    reactor = current_reactor()
    resolver = reactor.run_vars.get(_RESOLVER)
    if not isinstance(resolver, _Resolver):
        resolver = reactor.run_vars[_RESOLVER] = _Resolver(reactor)
    cache = resolver.cache
    cached = cache.get(key)
    if cached is None or cached[0] <= now:
        answer: Future[tuple[Endpoint, ...] | CheckError] = Future()

        def deliver(result: tuple[Endpoint, ...] | CheckError) -> None:
            if not answer.done():
                answer.set_result(result)

        job = resolver.pool.submit(_lookup, name, port)
        job.add_done_callback(
            lambda done: reactor.call_soon_threadsafe(lambda: deliver(done.result()))
        )
        result = await answer
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cached = cache[key] = (time.monotonic() + TTL_S, result)
    result = cached[1]
    if isinstance(result, CheckError):
        raise CheckError(str(result))
    return result
