"""``report.html``: one self-contained page per run, repeat and compare folder.

The page is rendered from the Jinja2 template ``templates/report.html`` (package data). The
figures are embedded as base64 ``data:`` URIs and the style is inline, so the file opens
anywhere, offline, without JavaScript. Its body is the folder's Markdown report (report.md,
stability.md, compare.md) turned into HTML, so both files always say the same; what the top of
the page already shows (the title, the headline metrics, the warnings) is not repeated there.
"""

from __future__ import annotations

import base64
import html
import re
import struct
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
    return "\n".join(block for _, block in _markdown_blocks(text))


def _markdown_blocks(text: str) -> list[tuple[str, str]]:
    """Each block of ``text`` as ``(its first Markdown line, its HTML)``."""
    blocks: list[tuple[str, str]] = []
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
            blocks.append((stripped, f"<h{level}>{_inline(heading.group(2))}</h{level}>"))
            i += 1
        elif stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            blocks.append((stripped, _table(lines[i:j])))
            i = j
        elif re.match(r"[-*]\s", stripped):
            items = []
            while i < len(lines) and re.match(r"[-*]\s", lines[i].strip()):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            blocks.append((stripped, "<ul>" + "".join(items) + "</ul>"))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"(#{1,6}\s|\||[-*]\s)", lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            blocks.append((stripped, f"<p>{_inline(' '.join(para))}</p>"))
    return blocks


def _page_body(markdown: str, *, cards: bool) -> tuple[list[str], str]:
    """Splits a report's Markdown into ``(warnings, body)`` HTML, so the page says each thing once.

    The ``**Warning:`` paragraphs go to the top of the page; the body leaves out the level-1 title
    (the page's header) and, with ``cards``, the Metric / Value table (the cards show those numbers).
    """
    warnings, body = [], []
    for first, block in _markdown_blocks(markdown):
        if first.startswith("**Warning:"):
            warnings.append(block.removeprefix("<p>").removesuffix("</p>"))
        elif not (first.startswith("# ") or (cards and _cells(first) == ["Metric", "Value"])):
            body.append(block)
    return warnings, "\n".join(body)


def _png_size(data: bytes) -> tuple[int, int, float] | None:
    """A PNG's width and height in pixels and its dots per inch (150 where it does not say); None if no PNG."""
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    at = data.find(b"pHYs", 0, data.find(b"IDAT"))  # the physical size comes before the image data
    units_x, _, unit = struct.unpack(">IIB", data[at + 4:at + 13]) if at > 0 else (0, 0, 0)
    return width, height, units_x * 0.0254 if unit == 1 and units_x else 150.0


#: CSS pixels per inch of a figure: each PNG is shown at its natural size (its figure inches x 96).
CSS_PX_PER_INCH = 96


def _figure(path: Path, ref: FigureRef) -> dict[str, Any]:
    """A figure of the page: its data URI, caption and display size in CSS pixels.

    Legends stay readable at a 1300 px window: figures write legend text at
    :data:`~hsi.reporting.figures.LEGEND_FONT_PT` (10 pt) into a PNG of ``dpi`` (150) pixels per inch,
    and the page shows the PNG at 96 CSS px per inch, so 10 pt is 10 / 72 x 96 = 13.3 px (capitals
    about 9.7 px). At 1300 px the figures' column is 1144 px (``main`` 1240 px less its padding), wider
    than any scene map (at most about 10.5 in = 1008 px), so no map is scaled down there; narrower
    windows shrink the figures (``max-width: 100%``).
    """
    data = path.read_bytes()
    shown: dict[str, Any] = {"src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                             "caption": ref.caption, "wide": ref.wide, "width": None, "height": None}
    size = _png_size(data)
    if size is not None:
        width, height, dpi = size
        shown.update(width=round(width * CSS_PX_PER_INCH / dpi), height=round(height * CSS_PX_PER_INCH / dpi))
    return shown


def render_report(
    folder: Path,
    *,
    title: str,
    subtitle: str = "",
    headline: Sequence[Card] = (),
    warnings: Sequence[str] = (),
    lead: str = "",
    figure_groups: Sequence[tuple[str, Sequence[FigureRef]]] = (),
    markdown: str = "",
    markdown_name: str = "report.md",
    links: Sequence[tuple[str, str]] = (),
    links_heading: str = "Run folders",
) -> str:
    """The page's HTML; figures missing from ``folder`` are left out (a run without training curve).

    ``warnings``: plain text, shown at the top with the ``**Warning:`` paragraphs of ``markdown``
    (which the body then leaves out). ``lead``: Markdown shown above the figures (a repeat's answer),
    left out of ``markdown`` by the caller.
    """
    import jinja2
    from markupsafe import Markup

    from hsi import __version__

    groups: list[dict[str, Any]] = []
    for heading, refs in figure_groups:
        shown = [_figure(folder / r.file, r) for r in refs if (folder / r.file).is_file()]
        if shown:
            groups.append({"heading": heading, "figures": shown})
    source = resources.files("hsi.reporting").joinpath("templates").joinpath("report.html").read_text(encoding="utf-8")
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(source)
    lifted, body = _page_body(markdown, cards=bool(headline))
    shown_warnings = [Markup("<strong>Warning:</strong> ") + w for w in warnings] + [Markup(w) for w in lifted]
    return template.render(
        title=title, subtitle=subtitle, headline=list(headline), warnings=shown_warnings,
        lead=Markup(markdown_to_html(lead)) if lead else "", figure_groups=groups,
        body=Markup(body), markdown_name=markdown_name,
        links=[{"href": href, "text": text} for href, text in links], links_heading=links_heading,
        version=__version__,
    )


def write_html_report(folder: Path, **kwargs: Any) -> None:
    """Writes ``folder/report.html`` (:func:`render_report`'s keywords)."""
    atomic_write_text(folder / HTML_FILE, render_report(folder, **kwargs))
