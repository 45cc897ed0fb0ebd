"""Real loopback peers for checker tests: servers in background threads, as context managers.

Each responder binds an ephemeral port on 127.0.0.1 or ::1, serves until its ``with``
block ends, and records what it saw so tests can assert on the requests.
"""
