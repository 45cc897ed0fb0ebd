"""seesaw-healthcheck: a drop-in Python health-check server for Google Seesaw."""

__version__ = "0.1.0"
