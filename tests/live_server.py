"""The real server with its HTTP endpoint, for the operability tests: a mix of loopback
checks (``Fleet``), the Go engine stand-in serving them, and ``seesaw-healthcheck`` as a
subprocess with ``-http_addr 127.0.0.1:PORT`` on a free port (``LiveServer``).

The fleet's checks, ids as Seesaw's engine numbers them (``(pid & 0xFFFF) << 48`` counting
up, so beyond 2^53), every 200 ms, no retries (a flip shows at the next run), each with
a message that stays the same while its state does:

- TCP to four ``ToggleTarget`` ports (the first two on, the last two off: flip them at
  will), to a TCP responder on ``::1`` (healthy) and to a closed port (unhealthy);
- HTTP ``/healthz`` twice (healthy) and ``/notfound`` expecting 200 (unhealthy);
- UDP to an echo (healthy) and to a port answering something else (unhealthy);
- DNS with the right answer (healthy) and expecting a wrong one (unhealthy);
- one config without a checker (type ``unknown``: never runs, stays ``unknown``).

``fleet.expected()`` is what each check's state must be, given the toggles.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socketserver
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import free_port
from tests.gopeer import GoEngine, read_records, write_checks_file
from tests.responders.dns import DNSResponder
from tests.responders.http import HTTPResponder
from tests.responders.tcp import TCPResponder
from tests.responders.udp import UDPEchoResponder
from tests.test_server_integration import FAST, ToggleTarget, latest

ID_BASE = 0xBEEF << 48
STATE_NAMES = {0: "unknown", 1: "unhealthy", 2: "healthy"}
TOGGLES = 4


class Fleet:
    """The responders and the checks against them; a context manager."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.toggles: dict[int, ToggleTarget] = {}  # check id -> its target
        self._on: dict[int, bool] = {}  # check id -> whether its target accepts
        self.configs: list[dict[str, Any]] = []
        self.fixed: dict[int, str] = {}  # check id -> its state, for the untoggled ones
        self.kinds: dict[int, str] = {}  # check id -> its type on /status

    def __enter__(self) -> Fleet:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _add(self, kind: str, state: str | None, **fields: Any) -> int:
        check_id = ID_BASE + len(self.configs) + 1
        config = {"id": check_id, "interval": "200ms", "timeout": "300ms", "type": kind}
        self.configs.append({**config, **fields})
        self.kinds[check_id] = "unknown" if kind == "none" else kind
        if state is not None:
            self.fixed[check_id] = state
        return check_id

    def _start(self) -> None:
        enter = self._stack.enter_context
        zone = {("www.example.com.", "A"): ["192.0.2.1"]}
        tcp6 = enter(TCPResponder("::1"))
        web = enter(HTTPResponder("127.0.0.1"))
        quiet_connection_errors(web.server)
        echo = enter(UDPEchoResponder("127.0.0.1"))
        wrong = enter(UDPEchoResponder("127.0.0.1", reply=b"pong"))
        dns = enter(DNSResponder("127.0.0.1", zone))
        for n in range(TOGGLES):
            target = ToggleTarget()
            self._stack.callback(target.off)
            if n < TOGGLES // 2:
                target.on()
            check_id = self._add("tcp", None, ip="127.0.0.1", port=target.port)
            self.toggles[check_id] = target
            self._on[check_id] = n < TOGGLES // 2
        self._add("tcp", "healthy", ip="::1", port=tcp6.port)
        self._add("tcp", "unhealthy", ip="127.0.0.1", port=free_port())
        http = {"ip": "127.0.0.1", "port": web.port, "method": "GET", "response_code": 200}
        self._add("http", "healthy", request="/healthz", response="ok", **http)
        self._add("http", "healthy", request="/", **http)
        self._add("http", "unhealthy", request="/notfound", **http)
        udp = {"ip": "127.0.0.1", "send": "ping", "receive": "ping"}
        self._add("udp", "healthy", port=echo.port, **udp)
        self._add("udp", "unhealthy", port=wrong.port, **udp)
        query = {"ip": "127.0.0.1", "port": dns.port, "query": "www.example.com.", "query_type": 1}
        self._add("dns", "healthy", answer="192.0.2.1", **query)
        self._add("dns", "unhealthy", answer="192.0.2.99", **query)
        self._add("none", "unknown")

    @property
    def ids(self) -> list[int]:
        return [c["id"] for c in self.configs]

    def is_on(self, check_id: int) -> bool:
        return self._on[check_id]

    def flip(self, check_id: int) -> None:
        """Turn a toggled target off if it is on, on if it is off."""
        target = self.toggles[check_id]
        if self._on[check_id]:
            target.off()
        else:
            target.on()
        self._on[check_id] = not self._on[check_id]

    def expected(self) -> dict[int, str]:
        """Each check's state (healthy, unhealthy, unknown), as the toggles now make it."""
        states = dict(self.fixed)
        for check_id in self.toggles:
            states[check_id] = "healthy" if self.is_on(check_id) else "unhealthy"
        return states

    def counts(self) -> dict[tuple[str, str], int]:
        """(type, state) -> how many checks, as the toggles now make it."""
        out: dict[tuple[str, str], int] = {}
        for check_id, state in self.expected().items():
            key = (self.kinds[check_id], state)
            out[key] = out.get(key, 0) + 1
        return out


def quiet_connection_errors(server: socketserver.BaseServer) -> None:
    """No traceback on stderr when a checker hangs up once it has the status line (it
    would land in the output a test captures); other errors as before."""
    report = server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


class LiveServer:
    """The Go engine serving ``configs`` (None: no engine yet, see ``start_engine``) and
        the server against it (run by ``prefix`` if given), its HTTP endpoint on a free loopback
    port; a context manager.
        On exit: SIGTERM, and the exit status must be 0."""

    def __init__(
        self,
        tmp: Path,
        configs: list[dict[str, Any]] | None,
        *flags: str,
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.engine_socket = tmp / "engine.sock"
        self.checks_file = tmp / "checks.json"
        self.record = tmp / "record.jsonl"
        self.stats_file = tmp / "stats.json"
        self.log_path = tmp / "server.log"
        self._configs = configs
        self._flags = flags
        self._env = dict(os.environ if env is None else env)
        self._prefix = list(prefix)  # a command that runs the server (setpriv ...)
        self.engine: GoEngine | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LiveServer:
        try:
            if self._configs is not None:
                self.start_engine(self._configs)
            self._start_server()
        except BaseException:
            self._stop(check=False)
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            sys.stderr.write(self.log()[-4000:])
        self._stop(check=et is None)

    def start_engine(self, configs: list[dict[str, Any]]) -> None:
        write_checks_file(self.checks_file, configs)
        self.engine = GoEngine(self.engine_socket, checks_file=self.checks_file, record=self.record)
        self.engine.start()

    def _start_server(self) -> None:
        args = [
            *self._prefix, sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck",
            "-engine", str(self.engine_socket), "-logtostderr",
            "-stats_file", str(self.stats_file), "-http_addr", f"127.0.0.1:{self.port}",
            *FAST, *self._flags,
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=self._env)
        # Until its check worker's first heartbeat, /healthz says 503.
        wait_until(self._live, 15, f"{self.url}/healthz to answer 200")

    def _live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log()}")
        try:
            return http_get(f"{self.url}/healthz", timeout=2)[0] == 200
        except OSError:
            return False

    def _stop(self, *, check: bool) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    raise AssertionError("server ignored SIGTERM for 10 s") from None
            if check and proc is not None:
                assert proc.returncode == 0, f"exit {proc.returncode}\n{self.log()[-3000:]}"
        finally:
            if self.engine is not None:
                self.engine.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def get(self, path: str) -> tuple[int, str, bytes]:
        return http_get(self.url + path)

    def status(self, query: str = "") -> dict[str, Any]:
        code, kind, body = self.get(f"/status{query}")
        assert code == 200, (code, body[:500])
        assert kind == "application/json", kind
        document: dict[str, Any] = json.loads(body)
        return document

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.record)

    def engine_view(self) -> dict[int, tuple[str, str]]:
        """Each check's (state, message) as the engine last received it."""
        return {
            check_id: (STATE_NAMES[r["state"]], r["message"])
            for check_id, r in latest(self.records()).items()
        }


def status_view(document: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Each check's (state, message) in a /status document."""
    return {c["id"]: (c["state"], c["message"]) for c in document["checks"]}


def states_of(view: Mapping[int, tuple[str, str]]) -> dict[int, str]:
    return {check_id: state for check_id, (state, _) in view.items()}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` every 50 ms until truthy; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_fleet(
    tmp: Path, *flags: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[Fleet, LiveServer]]:
    """A fleet and a server running its checks, every check in its expected state as the
    engine received it."""
    with Fleet() as fleet, LiveServer(tmp, fleet.configs, *flags, env=env) as server:
        wait_until(
            lambda: states_of(server.engine_view()) == fleet.expected(),
            20,
            "every check to reach its expected state at the engine",
        )
        yield fleet, server
