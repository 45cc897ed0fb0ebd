"""Debian's ``chromium``, headless, as a real browser for the status page tests.

Two ways to drive it, both bounded by timeouts and each with a fresh, empty profile:

- ``dump_dom(url)`` and ``screenshot(url, path)``: one run of the command line
  (``--dump-dom`` / ``--screenshot``) with a virtual-time budget, so scripts and the
  page's first fetch have run before the DOM is dumped or the picture taken.
- ``Browser``: a live browser over the DevTools protocol on a pipe
  (``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4, no port, no
  websocket), for tests that act on the page and wait for it to change:
  ``navigate``, ``evaluate``, ``wait_for``, ``dom``, ``screenshot``. It records the
  page's uncaught exceptions and console errors in ``errors``.

Chromium runs as root here; the flags below turn off its sandbox (which refuses root), the
GPU and everything that would call home, and keep it on loopback: any other host or
address fails at once.

``python -m tests.peers.chromium URL PNG [WIDTHxHEIGHT]`` takes a screenshot by hand.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

PACKAGE = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--password-store=basic",
    "--no-pings",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-default-apps",
    # Loopback only: every other host name resolves to nothing, and any other address
    # goes to a proxy that is not there (loopback addresses bypass proxies implicitly).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
    "--proxy-server=http://127.0.0.1:9",
)
DEFAULT_TIMEOUT_S = 60.0


class ChromiumError(RuntimeError):
    """Chromium is missing, failed, or did not answer in time."""


def binary() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise ChromiumError(
            "chromium not found: install Debian's chromium package "
            "(make test does: apt-get install chromium)"
        )
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [binary(), *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish within {timeout:g}s: {cmd}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise ChromiumError(f"chromium exited with {done.returncode}: {tail}")
    return done


def dump_dom(
    url: str,
    *,
    budget_ms: int = 5000,
    window: tuple[int, int] = (1280, 1600),
    timeout: float = DEFAULT_TIMEOUT_S,
) -> str:
    """The serialized DOM of ``url`` after ``budget_ms`` of virtual time (timers run fast,
    network loads are waited for)."""
    done = _run(
        [
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ],
        timeout,
    )
    return done.stdout.decode("utf-8", errors="replace")


def screenshot(
    url: str,
    path: Path,
    *,
    budget_ms: int = 5000,
    window: tuple[int, int] = (1280, 800),
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """A PNG of ``url`` at ``window`` size after ``budget_ms`` of virtual time."""
    path = Path(path).resolve()
    _run(
        [
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={path}",
            url,
        ],
        timeout,
    )
    if not path.is_file() or path.stat().st_size == 0:
        raise ChromiumError(f"chromium wrote no screenshot to {path}")
    return path


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe; a context manager.

    One page, ``window`` CSS pixels large. Every wait is bounded: a command that gets no
    answer within ``timeout`` seconds raises ChromiumError.
    """

    def __init__(
        self, *, window: tuple[int, int] = (1280, 800), timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.window = window
        self.timeout = timeout
        self.errors: list[str] = []
        self._profile = Path(tempfile.mkdtemp(prefix="chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_browser = -1
        self._from_browser = -1
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        self._stderr: IO[bytes] | None = None

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        exe = binary()
        # Chromium reads commands on fd 3 and writes answers on fd 4. The child's ends are
        # copied above fd 9 (so neither is 3 or 4) and bash moves them into place (dash
        # takes one-digit fds only): no preexec_fn, unsafe while other threads run.
        child_reads, self._to_browser = os.pipe()
        self._from_browser, child_writes = os.pipe()
        reads = fcntl.fcntl(child_reads, fcntl.F_DUPFD_CLOEXEC, 10)
        writes = fcntl.fcntl(child_writes, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(child_reads)
        os.close(child_writes)
        self._stderr = open(self._profile / "stderr.log", "wb")  # noqa: SIM115 (closed in close())
        move = f'exec "$@" 3<&{reads} 4>&{writes} {reads}<&- {writes}>&-'
        try:
            self._proc = subprocess.Popen(
                [
                    "/bin/bash",
                    "-c",
                    move,
                    "sh",
                    exe,
                    *FLAGS,
                    f"--user-data-dir={self._profile}",
                    "--remote-debugging-pipe",
                    f"--window-size={self.window[0]},{self.window[1]}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(reads, writes),
            )
        finally:
            os.close(reads)
            os.close(writes)
        page = self._wait_page_target()
        attached = self.command(
            "Target.attachToTarget", {"targetId": page, "flatten": True}, session=False
        )
        self._session = attached["sessionId"]
        self.command("Page.enable")
        self.command("Runtime.enable")
        # Without a window system the page never has focus; keyboard tests need it.
        self.command("Emulation.setFocusEmulationEnabled", {"enabled": True})
        self.command(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": self.window[0],
                "height": self.window[1],
                "deviceScaleFactor": 1,
                "mobile": False,
            },
        )

    def _wait_page_target(self) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            infos = self.command("Target.getTargets", session=False)["targetInfos"]
            pages = [t["targetId"] for t in infos if t.get("type") == "page"]
            if pages:
                return str(pages[0])
            time.sleep(0.05)
        raise ChromiumError(f"chromium showed no page within {self.timeout:g}s")

    def close(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ChromiumError, OSError):
                self._send("Browser.close", {}, session=False)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_browser = self._from_browser = -1
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        shutil.rmtree(self._profile, ignore_errors=True)

    def stderr_tail(self) -> str:
        try:
            return (self._profile / "stderr.log").read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    # ---- protocol ---------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], *, session: bool) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]
        return self._next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ChromiumError(f"chromium closed its pipe: {self.stderr_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _event(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            self.errors.append("console.error: " + " ".join(str(a.get("value")) for a in args))

    def command(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result (ChromiumError on an error)."""
        if self._proc is None:
            raise ChromiumError("the browser is not running")
        sent = self._send(method, params or {}, session=session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read_message(deadline)
            if message.get("id") != sent:
                self._event(message)
                continue
            if "error" in message:
                raise ChromiumError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    # ---- page -------------------------------------------------------------------------

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.command(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"{expression!r} threw: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Evaluate ``expression`` until it is truthy, at most ``timeout`` seconds; return it."""
        deadline = time.monotonic() + timeout
        value: Any = None
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise ChromiumError(
                    f"{expression!r} still {value!r} after {timeout:g}s; page errors: "
                    f"{self.errors or 'none'}"
                )
            time.sleep(interval)

    def navigate(self, url: str, timeout: float | None = None) -> None:
        """Open ``url`` and wait until the document has loaded."""
        result = self.command("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise ChromiumError(f"cannot open {url}: {result['errorText']}")
        self.wait_for(
            f"document.readyState === 'complete' && location.href.startsWith({json.dumps(url)})",
            timeout or self.timeout,
        )

    def press(self, key: str) -> None:
        """Press and release a key (``Enter``, ``Tab``, ``ArrowDown``, ...) on the page."""
        codes = {"Enter": 13, "Tab": 9, "Escape": 27, " ": 32, "ArrowUp": 38, "ArrowDown": 40}
        down: dict[str, Any] = {"type": "keyDown", "key": key, "code": key}
        if key in codes:
            down["windowsVirtualKeyCode"] = codes[key]
        if key == "Enter":
            down["text"] = "\r"
        elif len(key) == 1:
            down["text"] = key
        self.command("Input.dispatchKeyEvent", down)
        up = {k: v for k, v in down.items() if k != "text"}
        self.command("Input.dispatchKeyEvent", {**up, "type": "keyUp"})

    def dom(self) -> str:
        """The serialized DOM, as ``--dump-dom`` prints it."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        data = self.command("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m tests.peers.chromium URL PNG [WIDTHxHEIGHT]", file=sys.stderr)
        return 2
    size = (1280, 800)
    if len(argv) == 3:
        width, _, height = argv[2].partition("x")
        size = (int(width), int(height))
    print(screenshot(argv[0], Path(argv[1]), window=size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
