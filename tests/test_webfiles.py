"""The status page's files as shipped in the package: all there, and the page loads
nothing from anywhere but its own server (works offline, passes its own CSP)."""

from __future__ import annotations

import re

from seesaw_healthcheck.control import webfiles


def test_every_route_serves_its_file() -> None:
    for path, (name, content_type) in webfiles.ROUTES.items():
        page = webfiles.lookup(path)
        assert page is not None, path
        assert page.body == (webfiles.WEB_DIR / name).read_bytes()
        assert page.body, name
        assert page.content_type == content_type
    assert webfiles.lookup("/nope") is None
    assert webfiles.lookup("/../pyproject.toml") is None


def test_page_refers_only_to_its_own_files() -> None:
    index = webfiles.WEB_DIR.joinpath("index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', index)
    assert refs, "the page refers to no file at all?"
    for ref in refs:
        assert ref in ("#", "data:,") or "/" + ref in webfiles.ROUTES, ref
    for name in ("index.html", "status.js", "status.css"):
        text = webfiles.WEB_DIR.joinpath(name).read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), name
    # No inline script or style: the Content-Security-Policy forbids them.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index)
    assert "<style" not in index and " style=" not in index
    csp = dict(webfiles.HEADERS)["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
