"""The status page (``/``) in Debian's headless Chromium, against the fixture server of the
/status contract (tests/peers/status_fixture.py): every check's row and state, a state
change picked up by auto-refresh, exact uint64 ids, and 50,000 checks with virtual
scrolling and filtering."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tests.peers import chromium, status_page
from tests.peers.status_fixture import StatusFixture

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rendered_rows(browser: chromium.Browser) -> int:
    return int(browser.evaluate("document.querySelectorAll('#rows tr[data-id]').length"))


def test_dumped_dom_holds_every_check_with_its_state_and_exact_id(tmp_path: Path) -> None:
    with StatusFixture(20, seed=3) as fixture:
        dom = status_page.parse(chromium.dump_dom(fixture.url, budget_ms=3000))
        assert fixture.status_requests >= 1
        shot = chromium.screenshot(fixture.url, tmp_path / "page.png", window=(1024, 640))
        checks = fixture.checks
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    # The PNG's header holds its size: the window asked for.
    assert shot.read_bytes()[16:24] == (1024).to_bytes(4, "big") + (640).to_bytes(4, "big")
    rows = dom.by_id()
    # Ids beyond 2^53 come out exactly as the server sent them, not rounded.
    assert all(check_id > 2**53 for check_id in checks)
    assert set(rows) == {str(check_id) for check_id in checks}
    for check_id, check in checks.items():
        row = rows[str(check_id)]
        assert row.row_class == check["state"]
        assert row.cell("state") == check["state"]
        assert row.cell("type") == check["type"]
        assert row.cell("description") == check["description"]
        assert row.cell("message") == check["message"]
        assert row.cell("failures") == f"{check['failures']:,}"
    # The rows come in id order (the default sort), the totals match the checks.
    assert [row.id for row in dom.rows] == [str(i) for i in sorted(checks)]
    states = [c["state"] for c in checks.values()]
    for state in ("healthy", "unhealthy", "unknown"):
        assert dom.text(f"total-{state}") == str(states.count(state))
    assert dom.text("total-checks") == "20"
    assert dom.text("server-pid") == "4242"
    assert dom.text("summary").startswith("20 checks")


def test_auto_refresh_shows_a_state_change(tmp_path: Path) -> None:
    rng = random.Random()
    with StatusFixture(20, seed=4) as fixture, chromium.Browser(window=(1280, 900)) as browser:
        browser.navigate(fixture.url + "#refresh=1")
        browser.wait_for("document.querySelectorAll('#rows tr[data-id]').length === 20", 30)
        healthy = [i for i, c in fixture.checks.items() if c["state"] == "healthy"]
        flipped = rng.choice(healthy)
        message = f"dial tcp4 10.9.9.9:80: connect: connection refused #{rng.randrange(10**6)}"
        requests_before = fixture.status_requests
        fixture.set_state(flipped, "unhealthy", message)
        fixture.update_server(last_fetch_error="engine: connection refused")

        selector = json.dumps(f'#rows tr[data-id="{flipped}"]')
        browser.wait_for(f"document.querySelector({selector})?.className === 'unhealthy'", 15)
        dom = status_page.parse(browser.dom())
        shot = browser.screenshot(tmp_path / "status-page.png")
        errors = browser.errors

    assert fixture.status_requests > requests_before  # the page fetched again by itself
    row = dom.by_id()[str(flipped)]
    assert row.cell("state") == "unhealthy"
    assert row.cell("message") == message
    assert row.cell("consecutive_failures") == "1"
    states = {row.id: row.row_class for row in dom.rows}
    assert states == {str(i): c["state"] for i, c in fixture.checks.items()}
    assert dom.text("total-unhealthy") == str(fixture.count("unhealthy"))
    assert "engine: connection refused" in dom.text("fetch-error")
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    assert shot.stat().st_size > 10_000
    assert errors == []


def test_an_unreachable_server_is_shown_and_the_page_recovers() -> None:
    with StatusFixture(10, seed=7) as fixture, chromium.Browser(window=(1280, 900)) as browser:
        browser.navigate(fixture.url + "#refresh=1")
        browser.wait_for("document.querySelectorAll('#rows tr[data-id]').length === 10", 30)
        reason = f"status table busy #{random.randrange(10**6)}"
        fixture.broken = (503, json.dumps({"error": reason}).encode())
        banner = browser.wait_for(
            "!document.getElementById('load-error').hidden && "
            "document.getElementById('load-error').textContent",
            15,
        )
        stale = browser.evaluate("document.getElementById('checks').classList.contains('stale')")
        kept = rendered_rows(browser)
        fixture.broken = None
        browser.wait_for("document.getElementById('load-error').hidden", 15)
        recovered = browser.evaluate("document.getElementById('checks').className")
    assert f"HTTP 503: {reason}" in banner
    assert "Showing the status generated at" in banner
    assert stale is True
    assert kept == 10  # the last good data stays on the page
    assert "stale" not in recovered


def test_sort_by_clicking_a_header_and_detail_of_a_row() -> None:
    with StatusFixture(30, seed=6) as fixture, chromium.Browser(window=(1280, 1400)) as browser:
        browser.navigate(fixture.url + "#refresh=off")
        browser.wait_for("document.querySelectorAll('#rows tr[data-id]').length === 30", 30)
        # Keyboard: focus the header button and press Enter, as a keyboard user would.
        browser.evaluate("document.querySelector('th[data-key=failures] button').focus()")
        browser.press("Enter")
        browser.wait_for("location.hash.includes('sort=-failures')", 5)
        sort_state = browser.evaluate(
            "document.querySelector('th[data-key=failures]').getAttribute('aria-sort')"
        )
        dom = status_page.parse(browser.dom())
        # Click a row: its full JSON, id exact (not rounded), in the dialog.
        target = dom.rows[-1].id
        selector = json.dumps(f'#rows tr[data-id="{target}"] td.desc')
        browser.evaluate(f"document.querySelector({selector}).click()")
        shown = browser.wait_for(
            "document.getElementById('detail').open && "
            "document.getElementById('detail-json').textContent",
            5,
        )
        errors = browser.errors
    assert sort_state == "descending"
    want = sorted(fixture.checks.values(), key=lambda c: (-c["failures"], c["id"]))
    assert [row.id for row in dom.rows] == [str(c["id"]) for c in want]
    assert json.loads(shown) == fixture.checks[int(target)]
    assert f'"id": {target},' in shown
    assert errors == []


@pytest.mark.slow
def test_fifty_thousand_checks_virtual_scrolling_and_filters() -> None:
    n = 50_000
    with StatusFixture(n, seed=5) as fixture, chromium.Browser(window=(1280, 800)) as browser:
        browser.navigate(fixture.url + "#refresh=off")
        browser.wait_for(f"document.getElementById('summary').dataset.shown === '{n}'", 120)
        first_rows = rendered_rows(browser)
        rowcount = browser.evaluate(
            "document.getElementById('checks').getAttribute('aria-rowcount')"
        )
        doc_height = browser.evaluate("document.documentElement.scrollHeight")

        unhealthy = sorted(i for i, c in fixture.checks.items() if c["state"] == "unhealthy")
        browser.evaluate(
            "(() => { const s = document.getElementById('filter-state');"
            " s.value = 'unhealthy'; s.dispatchEvent(new Event('change')); })()"
        )
        browser.wait_for(
            f"document.getElementById('summary').dataset.shown === '{len(unhealthy)}'", 30
        )
        summary = browser.evaluate("document.getElementById('summary').textContent")
        filtered = status_page.parse(browser.dom())

        # At the bottom of the filtered list the last rows are there, and still few rows.
        browser.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        last_id = json.dumps(str(unhealthy[-1]))
        browser.wait_for(
            "(() => { const r = document.querySelectorAll('#rows tr[data-id]');"
            f" return r.length > 0 && r[r.length - 1].dataset.id === {last_id}; }})()",
            10,
        )
        bottom_rows = rendered_rows(browser)

        # The free-text filter finds one check by its exact id.
        wanted = random.Random().choice(unhealthy)
        browser.evaluate(
            "(() => { const t = document.getElementById('filter-text');"
            f" t.value = '{wanted}'; t.dispatchEvent(new Event('input')); }})()"
        )
        browser.wait_for("document.getElementById('summary').dataset.shown === '1'", 10)
        found = status_page.parse(browser.dom())
        errors = browser.errors

    assert 0 < first_rows <= 200, first_rows
    assert rowcount == str(n + 1)
    assert doc_height > n * 20  # the spacers keep the full height: the scrollbar is right
    assert f"Showing {len(unhealthy):,} of {n:,} checks" in summary
    assert 0 < len(filtered.rows) <= 200
    assert all(row.row_class == "unhealthy" for row in filtered.rows)
    assert [row.id for row in filtered.rows] == [str(i) for i in unhealthy[: len(filtered.rows)]]
    assert 0 < bottom_rows <= 200, bottom_rows
    assert [row.id for row in found.rows] == [str(wanted)]
    assert errors == []
