"""The health-check server: updater (fetch configs), manager (schedule checks), notifier."""

from seesaw_healthcheck.server.config import ServerConfig

__all__ = ["ServerConfig"]
