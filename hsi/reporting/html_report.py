"""``report.html``: one self-contained page per run, repeat and compare folder.

The page is rendered from the Jinja2 template ``templates/report.html`` (package data). The
figures are embedded as base64 ``data:`` URIs and the style is inline, so the file opens
anywhere, offline, without JavaScript. Its body is the folder's Markdown report (report.md,
stability.md, compare.md) turned into HTML, so both files always say the same.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hsi.reporting.files import atomic_write_text

__all__ = ["Card", "FigureRef", "markdown_to_html", "render_report", "write_html_report"]

HTML_FILE = "report.html"


@dataclass(frozen=True)
class Card:
    """One headline figure at the top of the page, e.g. ``Card("OA", "93.10%")``."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class FigureRef:
    """A PNG of the folder shown on the page: its file name and caption (``wide``: a full row)."""

    file: str
    caption: str
    wide: bool = False


def _inline(text: str) -> str:
    """Escapes ``text`` and turns Markdown's ``**bold**``, ``*italic*`` and `` `code` `` into HTML."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    header, rest = _cells(lines[0]), lines[1:]
    align: list[str] = []
    if rest and re.fullmatch(r"\|?[\s:|-]+\|?", rest[0].strip()):
        align = ["r" if c.endswith(":") and not c.startswith(":") else "" for c in _cells(rest[0])]
        rest = rest[1:]

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="r"' if i < len(align) and align[i] == "r" else ""
        return f"<{tag}{cls}>{_inline(text)}</{tag}>"

    head = "".join(cell("th", i, c) for i, c in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(_cells(r))) + "</tr>" for r in rest)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown_to_html(text: str) -> str:
    """The Markdown the reports write (headings, paragraphs, pipe tables, lists, bold, code) as HTML."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        if heading:
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            blocks.append(_table(lines[i:j]))
            i = j
        elif re.match(r"[-*]\s", stripped):
            items = []
            while i < len(lines) and re.match(r"[-*]\s", lines[i].strip()):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"(#{1,6}\s|\||[-*]\s)", lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(blocks)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_report(
    folder: Path,
    *,
    title: str,
    subtitle: str = "",
    headline: Sequence[Card] = (),
    warnings: Sequence[str] = (),
    figure_groups: Sequence[tuple[str, Sequence[FigureRef]]] = (),
    markdown: str = "",
    markdown_name: str = "report.md",
    links: Sequence[tuple[str, str]] = (),
    links_heading: str = "Run folders",
) -> str:
    """The page's HTML; figures missing from ``folder`` are left out (a run without training curve)."""
    import jinja2
    from markupsafe import Markup

    from hsi import __version__

    groups: list[dict[str, Any]] = []
    for heading, refs in figure_groups:
        shown = [{"src": _data_uri(folder / r.file), "caption": r.caption, "wide": r.wide}
                 for r in refs if (folder / r.file).is_file()]
        if shown:
            groups.append({"heading": heading, "figures": shown})
    source = resources.files("hsi.reporting").joinpath("templates").joinpath("report.html").read_text(encoding="utf-8")
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(source)
    return template.render(
        title=title, subtitle=subtitle, headline=list(headline), warnings=list(warnings), figure_groups=groups,
        body=Markup(markdown_to_html(markdown)), markdown_name=markdown_name,
        links=[{"href": href, "text": text} for href, text in links], links_heading=links_heading,
        version=__version__,
    )


def write_html_report(folder: Path, **kwargs: Any) -> None:
    """Writes ``folder/report.html`` (:func:`render_report`'s keywords)."""
    atomic_write_text(folder / HTML_FILE, render_report(folder, **kwargs))
