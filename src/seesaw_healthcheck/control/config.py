"""The server's settings, with Seesaw's defaults, and the checks they must reject."""

from __future__ import annotations

from dataclasses import dataclass

from seesaw_healthcheck.goduration import format_duration
from seesaw_healthcheck.model import MILLISECOND, SECOND

ENGINE_SOCKET = "/var/run/seesaw/engine/engine.sock"

# Seesaw's fixed values: the engine call timeout and the updater's retry pause on error.
ENGINE_TIMEOUT_S = 10.0
FETCH_RETRY_S = 5.0


MIN_RETRY_DELAY = 10 * MILLISECOND
DEFAULT_HTTP_ADDR = "127.0.0.1:10258"


class ConfigError(ValueError):
    """A server setting out of range; the message names the flag."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """healthcheck.ServerConfig. Durations are nanoseconds, as Go's time.Duration."""

    batch_delay: int = 100 * MILLISECOND
    batch_size: int = 100
    channel_size: int = 1000
    engine_socket: str = ENGINE_SOCKET
    max_failures: int = 10
    notify_interval: int = 15 * SECOND
    fetch_interval: int = 15 * SECOND
    retry_delay: int = 2 * SECOND
    dry_run: bool = False
    # Ours, not Seesaw's: the operator's HTTP endpoints ("": none), per-check series.
    http_addr: str = DEFAULT_HTTP_ADDR
    metrics_per_check: bool = False
    # Where checks come from: "engine" (Seesaw's, over gob), "grpc" (SetChecks) or
    # "file:PATH" (a TOML file of checks); and the gRPC API's address and TLS files.
    config_source: str = "engine"
    grpc_listen: str = ""
    grpc_cert: str = ""
    grpc_key: str = ""
    grpc_client_ca: str = ""

    @property
    def source(self) -> str:
        """``engine``, ``grpc`` or ``file``."""
        return "file" if self.config_source.startswith("file:") else self.config_source

    @property
    def checks_file(self) -> str:
        return self.config_source.removeprefix("file:")

    def validate(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        if self.batch_size <= 0:
            raise ConfigError(f"-batch_size must be positive, got {self.batch_size}")
        if self.channel_size < 0:
            raise ConfigError(f"-channel_size must not be negative, got {self.channel_size}")
        if self.max_failures <= 0:
            raise ConfigError(f"-max_failures must be positive, got {self.max_failures}")
        if not self.engine_socket:
            raise ConfigError("-engine must name a socket path")
        if self.source not in ("engine", "grpc", "file") or (
            self.source == "file" and not self.checks_file
        ):
            raise ConfigError(
                f"-config_source must be engine, grpc or file:PATH, got {self.config_source!r}"
            )
        if self.source == "grpc" and not self.grpc_listen:
            raise ConfigError("-config_source grpc needs -grpc_listen (where SetChecks comes)")
        if (self.grpc_cert or self.grpc_key or self.grpc_client_ca) and not self.grpc_listen:
            raise ConfigError("-grpc_cert, -grpc_key and -grpc_client_ca need -grpc_listen")
        if self.batch_delay < 0:
            raise ConfigError(
                f"-batch_delay must not be negative, got {format_duration(self.batch_delay)}"
            )
        if self.retry_delay < MIN_RETRY_DELAY:
            # Less is a busy loop against an engine that is down.
            raise ConfigError(
                f"-retry_delay must be at least {format_duration(MIN_RETRY_DELAY)}, "
                f"got {format_duration(self.retry_delay)}"
            )
        # Zero would spin: Go's tickers panic on a non-positive period.
        if self.notify_interval <= 0:
            raise ConfigError(
                f"-notify_interval must be positive, got {format_duration(self.notify_interval)}"
            )
        if self.fetch_interval <= 0:
            raise ConfigError(
                f"-fetch_interval must be positive, got {format_duration(self.fetch_interval)}"
            )
