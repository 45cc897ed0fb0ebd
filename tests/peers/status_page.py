"""Reading the status page's DOM (as ``chromium.dump_dom`` or ``Browser.dom`` return it):
the check rows of its table and the text of elements by id. Stdlib ``html.parser`` only.

The page renders each check as ``<tr class="STATE" data-id="ID">`` in ``<tbody id="rows">``
with the cells in the order of ``COLUMNS``; spacer rows (virtual scrolling) have no
``data-id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

COLUMNS = (
    "id",
    "type",
    "target",
    "description",
    "state",
    "since",
    "last_check",
    "duration",
    "failures",
    "successes",
    "consecutive_failures",
    "message",
)
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                       "meta", "source", "track", "wbr"})  # fmt: skip


@dataclass
class PageRow:
    id: str
    row_class: str
    cells: list[str] = field(default_factory=list)

    def cell(self, column: str) -> str:
        return self.cells[COLUMNS.index(column)]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[PageRow] = []
        self.texts: dict[str, list[str]] = {}
        self._open_ids: list[tuple[str, str]] = []  # (tag, id) of elements with an id
        self._in_rows = False
        self._row: PageRow | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a and tag not in VOID_TAGS:
            self._open_ids.append((tag, a["id"]))
            self.texts.setdefault(a["id"], [])
            if tag == "tbody" and a["id"] == "rows":
                self._in_rows = True
        if self._in_rows and tag == "tr" and "data-id" in a:
            self._row = PageRow(a["data-id"], a.get("class", ""))
            self.rows.append(self._row)
        elif self._row is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "tbody" and self._in_rows:
            self._in_rows = False
        for i in range(len(self._open_ids) - 1, -1, -1):
            if self._open_ids[i][0] == tag:
                del self._open_ids[i]
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, element_id in self._open_ids:
            self.texts[element_id].append(data)


@dataclass
class PageDom:
    rows: list[PageRow]
    texts: dict[str, str]

    def by_id(self) -> dict[str, PageRow]:
        return {row.id: row for row in self.rows}

    def text(self, element_id: str) -> str:
        """The text inside the element with that id, whitespace collapsed."""
        return " ".join(self.texts[element_id].split())


def parse(html: str) -> PageDom:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return PageDom(parser.rows, {k: "".join(v) for k, v in parser.texts.items()})
