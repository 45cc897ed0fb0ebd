"""systemd's notify protocol (sd_notify(3)) without libsystemd: datagrams to the socket in
``$NOTIFY_SOCKET``.

The control process says READY=1 once the first fetch is applied, WATCHDOG=1 every half
``WatchdogSec`` while its own loop and every worker's loop are turning (so a frozen worker
makes systemd restart the service), and STATUS= with the counts.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["SystemdNotifier"]

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Does nothing when not started by systemd (no ``NOTIFY_SOCKET``)."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name"; its address starts with a NUL byte.
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_s: float | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *fields: str) -> None:
        """Send ``KEY=value`` lines in one datagram; a failure is logged once."""
        if not self.address:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as err:
            if not self._failed:
                self._failed = True
                log.error("sd_notify to %r failed: %s", self.address.lstrip("\0"), err)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
