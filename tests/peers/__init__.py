"""Real peers and stand-ins for the control process's HTTP side: a fixture server of the
/status contract (``status_fixture``), headless Chromium (``chromium``) and Prometheus
(``prometheus``), each a Debian binary driven from Python with bounded waits."""
