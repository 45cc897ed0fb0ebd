"""``python -m seesaw_healthcheck.worker``: a check worker, started by the control process.

The control process passes the worker its end of the channel and its shared table as
inherited fds. The worker dies with the control process (``PR_SET_PDEATHSIG``, and the
channel's end of file), ignores SIGINT (a terminal's Ctrl-C reaches the whole process
group; the control process decides when workers stop) and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

from seesaw_healthcheck.channel import SharedTable
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.worker.worker import ChannelLogHandler, Worker

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies; exit now if it already has (the race before it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the channel's end of file still ends us
    if os.getppid() != parent:
        os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seesaw_healthcheck.worker")
    parser.add_argument("--channel", type=int, required=True, help="fd of the channel socket")
    parser.add_argument("--table", type=int, required=True, help="fd of the shared table")
    parser.add_argument("--parent", type=int, required=True, help="pid of the control process")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--log-level", type=int, default=logging.INFO)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    # Fewer, larger young-generation collections: a check allocates a handful of
    # short-lived containers.
    gc.set_threshold(10_000, 20, 20)
    channel = socket.socket(fileno=args.channel)
    table = SharedTable(args.table)
    reactor = Reactor()
    root = logging.getLogger()
    root.setLevel(args.log_level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    worker = Worker(reactor, channel, table, dry_run=args.dry_run)
    root.addHandler(ChannelLogHandler(worker))

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        reactor.stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    reactor.run_forever()
    # Stopped (the control process closed the channel, or SIGTERM): what the control
    # process needs is in the shared table and the reports already sent, so leave at once
    # instead of closing thousands of checks one by one; the kernel closes their sockets.
    worker.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
