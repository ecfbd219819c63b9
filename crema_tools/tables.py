"""Tables for people: padded columns for the terminal, Markdown for cards, reports and bench/."""

from __future__ import annotations

from typing import Sequence


def _cells(header: Sequence, rows: Sequence[Sequence]) -> tuple[list[str], list[list[str]], list[int]]:
    head = [str(c) for c in header]
    body = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return head, body, widths


def text_table(header: Sequence, rows: Sequence[Sequence], align: str | None = None, indent: str = "") -> list[str]:
    """Lines of padded columns; `align` has one letter per column, l (text) or r (numbers); default
    left for the first column and right for the others."""
    head, body, widths = _cells(header, rows)
    align = align or "l" + "r" * (len(head) - 1)

    def fmt(row: list[str]) -> str:
        cells = [v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(row, widths, align)]
        return (indent + "  ".join(cells)).rstrip()

    return [fmt(head), *(fmt(r) for r in body)]


def markdown_table(header: Sequence, rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured Markdown table; a `|` inside a cell is escaped so the table holds."""
    head, body, widths = _cells(header, [[str(c).replace("|", "\\|") for c in r] for r in rows])

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)])
