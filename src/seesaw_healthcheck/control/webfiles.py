"""The status page's static files (``web/``: index.html, status.js, status.css), for any
HTTP server that serves them: the control process, and the tests' fixture server.

The page is plain HTML/CSS/JS, shipped in the wheel beside this module (no build step, no
CDN): ``lookup(path)`` maps a request path to the file's bytes and content type, and
``HEADERS`` are the response headers to send with them. The page fetches ``status`` and
``status/<id>`` relative to its own URL, so it also works behind a path prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent / "web"

# Request path -> (file in WEB_DIR, Content-Type).
ROUTES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/status.js": ("status.js", "text/javascript; charset=utf-8"),
    "/status.css": ("status.css", "text/css; charset=utf-8"),
}

# Sent with every file: the page loads nothing but its own files and its own /status, and
# check messages (text from the targets) are only ever put into the page as text.
HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)


@dataclass(frozen=True, slots=True)
class WebFile:
    body: bytes
    content_type: str


def lookup(path: str) -> WebFile | None:
    """The file served at ``path`` (the URL path, without the query), or None."""
    route = ROUTES.get(path)
    if route is None:
        return None
    name, content_type = route
    return WebFile((WEB_DIR / name).read_bytes(), content_type)
