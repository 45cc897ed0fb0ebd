"""``seesaw-healthcheck``: the health-check server, with Seesaw's flags and defaults.

Flags Seesaw does not have: ``-http_addr`` and ``-metrics_per_check`` (the operator's
endpoints, see ``seesaw_healthcheck.control.endpoints``), ``-workers N|auto`` (check worker
processes, see ``seesaw_healthcheck.control``) and ``-stats_file PATH`` (rewrites PATH every
second with the server's counters as JSON; ``seesaw_healthcheck.control.app``; the benchmark
reads it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from seesaw_healthcheck import __version__, build_info
from seesaw_healthcheck.cli import glog
from seesaw_healthcheck.cli.goflags import FlagSet
from seesaw_healthcheck.control.config import ConfigError, ServerConfig

PROGRAM = "seesaw_healthcheck"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    defaults = ServerConfig()
    flags = FlagSet(PROGRAM)
    batch_delay = flags.duration(
        "batch_delay",
        defaults.batch_delay,
        "The maximum time to wait for batch to fill before sending the batch to the engine",
    )
    batch_size = flags.int(
        "batch_size",
        defaults.batch_size,
        "The maximum number of notifications to include in a single RPC call to the engine",
    )
    channel_size = flags.int(
        "channel_size", defaults.channel_size, "The size of the notification channel"
    )
    engine = flags.string("engine", defaults.engine_socket, "Seesaw Engine Socket")
    max_failures = flags.int(
        "max_failures",
        defaults.max_failures,
        "The maximum number of consecutive notification failures",
    )
    notify_interval = flags.duration(
        "notify_interval", defaults.notify_interval, "The time between notifications"
    )
    fetch_interval = flags.duration(
        "fetch_interval",
        defaults.fetch_interval,
        "The time between healthcheck config fetches from the Engine",
    )
    retry_delay = flags.duration(
        "retry_delay", defaults.retry_delay, "The time between notification RPC retries"
    )
    dry_run = flags.bool(
        "dry_run", defaults.dry_run, "Skips actual check and always return healthy as result"
    )
    version = flags.bool("version", False, "Print the version and exit")
    log_dir = flags.string(
        "log_dir", "", "If non-empty, write log files in this directory (else log to stderr)"
    )
    logtostderr = flags.bool("logtostderr", False, "log to standard error instead of files")
    alsologtostderr = flags.bool("alsologtostderr", False, "log to standard error as well as files")
    verbosity = flags.int("v", 0, "log level for V logs")
    stderrthreshold = flags.string(
        "stderrthreshold", "ERROR", "logs at or above this threshold go to stderr"
    )
    http_addr = flags.string(
        "http_addr",
        defaults.http_addr,
        'Serve the status page, /status, /metrics, /healthz and /readyz here ("": off)',
    )
    metrics_per_check = flags.bool(
        "metrics_per_check",
        defaults.metrics_per_check,
        "Export a series per check on /metrics (check_up{id,type,ip,port,mode})",
    )
    config_source = flags.string(
        "config_source",
        defaults.config_source,
        "Where checks come from: engine (Seesaw's), grpc (SetChecks on -grpc_listen) or "
        "file:PATH (a TOML file of checks, read again when it changes and on SIGHUP)",
    )
    grpc_listen = flags.string(
        "grpc_listen", "", "Serve the gRPC API on unix:PATH or HOST:PORT (off when empty)"
    )
    grpc_cert = flags.string("grpc_cert", "", "TLS certificate (PEM) for -grpc_listen HOST:PORT")
    grpc_key = flags.string("grpc_key", "", "TLS private key (PEM) for -grpc_cert")
    grpc_client_ca = flags.string(
        "grpc_client_ca", "", "Require gRPC client certificates signed by this CA (PEM)"
    )
    workers = flags.string(
        "workers",
        "1",
        "Check worker processes: a number, or auto for one per CPU this process may use",
    )
    stats_file = flags.string(
        "stats_file", "", "If non-empty, rewrite this file every second with counters as JSON"
    )
    flags.parse(args)  # a bad flag or value: Go's one-line error and usage, exit 2
    if flags.args:
        return _usage_error(f"unexpected arguments: {' '.join(flags.args)}")
    if version.value:
        print(f"seesaw-healthcheck {__version__}")
        print(f"build: {build_info.describe()}")
        return 0

    config = ServerConfig(
        batch_delay=batch_delay.value,
        batch_size=batch_size.value,
        channel_size=channel_size.value,
        engine_socket=engine.value,
        max_failures=max_failures.value,
        notify_interval=notify_interval.value,
        fetch_interval=fetch_interval.value,
        retry_delay=retry_delay.value,
        dry_run=dry_run.value,
        http_addr=http_addr.value,
        metrics_per_check=metrics_per_check.value,
        config_source=config_source.value,
        grpc_listen=grpc_listen.value,
        grpc_cert=grpc_cert.value,
        grpc_key=grpc_key.value,
        grpc_client_ca=grpc_client_ca.value,
    )
    try:
        config.validate()
        worker_count = parse_workers(workers.value)
    except ConfigError as err:
        return _usage_error(str(err))
    try:
        glog.setup(
            PROGRAM,
            log_dir=log_dir.value or None,
            logtostderr=logtostderr.value,
            alsologtostderr=alsologtostderr.value,
            verbosity=verbosity.value,
            stderrthreshold=stderrthreshold.value,
        )
    except (ValueError, OSError) as err:
        return _usage_error(str(err))

    from seesaw_healthcheck.control import app

    try:
        status = app.run(
            config,
            workers=worker_count,
            stats_file=stats_file.value or None,
            reopen_logs=glog.reopen,
        )
    finally:
        glog.shutdown()
    return status


def exit_now(status: int) -> None:
    """Leave without the interpreter's teardown: with 100,000 checks, freeing the table
    object by object would add a second to a SIGTERM. Everything is shut down by then."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


MAX_WORKERS = 256


def parse_workers(value: str) -> int:
    """``-workers``: a count, or ``auto`` (the CPUs this process may run on)."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f"-workers must be a number or auto, got {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"-workers must be between 1 and {MAX_WORKERS}, got {count}")
    return count


def _usage_error(message: str) -> int:
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    return 2


def entry_point() -> None:
    """The ``seesaw-healthcheck`` command."""
    exit_now(main())


if __name__ == "__main__":
    entry_point()
