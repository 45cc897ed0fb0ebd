"""The status page (``/``) of the real server in Debian's headless ``chromium``: the dumped
DOM holds every check's row with its state, type, description and message (ids beyond
2^53 exact) and the totals; after a target flips, the open page shows the new state by
itself (auto-refresh), and the test saves a PNG screenshot in its tmp dir. And the script
that makes the README's screenshot."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tests.live_server import running_fleet
from tests.peers import chromium, status_page

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parent.parent


def assert_page_matches(dom: status_page.PageDom, document: dict[str, object]) -> None:
    checks = document["checks"]
    assert isinstance(checks, list)
    rows = dom.by_id()
    assert [row.id for row in dom.rows] == [str(c["id"]) for c in checks]  # id order
    for check in checks:
        row = rows[str(check["id"])]
        assert row.row_class == check["state"], (row, check)
        assert row.cell("state") == check["state"]
        assert row.cell("type") == check["type"]
        assert row.cell("description") == check["description"]
        # A config that cannot run shows why instead of a message.
        problem = check["problem"]
        message = f"config problem: {problem}" if problem else check["message"]
        assert row.cell("message") == message
    totals = document["totals"]
    assert isinstance(totals, dict)
    for name in ("checks", "healthy", "unhealthy", "unknown"):
        assert dom.text(f"total-{name}") == str(totals[name]), name


@pytest.mark.slow
def test_status_page_shows_every_check_and_a_flip(short_tmp: Path, tmp_path: Path) -> None:
    rng = random.Random()
    with running_fleet(short_tmp) as (fleet, server):
        assert all(check_id > 2**53 for check_id in fleet.ids)
        dom = status_page.parse(chromium.dump_dom(server.url + "/", budget_ms=3000))
        document = server.status()
        # Nothing flips here: the page and a /status read after it show the same.
        assert {c["id"]: c["state"] for c in document["checks"]} == fleet.expected()
        assert_page_matches(dom, document)
        assert dom.text("server-pid") == str(server.pid)
        assert dom.text("summary").startswith(f"{len(fleet.ids)} checks")

        with chromium.Browser(window=(1280, 720)) as browser:
            browser.navigate(server.url + "/#refresh=1")
            count = len(fleet.ids)
            browser.wait_for(f"document.querySelectorAll('#rows tr[data-id]').length === {count}")
            flipped = rng.choice(list(fleet.toggles))
            was = fleet.expected()[flipped]
            fleet.flip(flipped)
            now = fleet.expected()[flipped]
            assert now != was
            selector = json.dumps(f'#rows tr[data-id="{flipped}"]')
            browser.wait_for(f"document.querySelector({selector})?.className === '{now}'", 15)
            # Nothing else flips: the whole page now matches the toggles.
            dom_after = status_page.parse(browser.dom())
            shot = browser.screenshot(tmp_path / "status-page.png")
            errors = browser.errors
        document_after = server.status()

    assert errors == []
    rows = dom_after.by_id()
    assert set(rows) == {str(i) for i in fleet.ids}
    assert {int(i): row.row_class for i, row in rows.items()} == fleet.expected()
    row = rows[str(flipped)]
    assert row.cell("state") == now
    want = "TCP connect to 127.0.0.1:" if now == "healthy" else "connect: connection refused"
    assert want in row.cell("message")
    assert row.cell("message") == next(
        c["message"] for c in document_after["checks"] if c["id"] == flipped
    )
    assert dom_after.text(f"total-{now}") == str(list(fleet.expected().values()).count(now))
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[16:24] == (1280).to_bytes(4, "big") + (720).to_bytes(4, "big")


@pytest.mark.slow
def test_the_readme_screenshot_regenerates(tmp_path: Path) -> None:
    """scripts/status_screenshot.py (how docs/status-page.png is made): the demo's checks
    of docs/status-page.toml, the real server on a free port, chromium."""
    out = tmp_path / "shot.png"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "status_screenshot.py"), "--out", str(out),
         "--size", "1000x500"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data[16:24] == (1000).to_bytes(4, "big") + (500).to_bytes(4, "big")
    assert done.stdout == f"{out}: 1000x500, {len(data)} bytes\n"
