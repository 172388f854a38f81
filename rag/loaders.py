"""Read source files into text with structure. One loader per format, chosen by suffix.

Each loader returns a :class:`ParsedSource`; offsets in its sections and pages index into its
``text``, which is what quotes are checked against.
"""

from __future__ import annotations

import html.parser
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import SourceError
from rag.metadata import load_yaml
from rag.sentences import is_citation_line
from rag.types import Page, Section


@dataclass(frozen=True)
class ParsedSource:
    text: str
    sections: tuple[Section, ...] = ()
    pages: tuple[Page, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


# Characters that draw nothing but are not Unicode whitespace: a file of only these is empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")  # Hangul fillers, the blank Braille cell
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})


def has_visible_text(text: str) -> bool:
    """Whether ``text`` draws anything: U+FEFF, U+200B, U+00A0, controls and marks alone do not."""
    return any(not c.isspace() and c not in _BLANK_LETTERS
               and unicodedata.category(c) not in _INVISIBLE_CATEGORIES for c in text)


def read_utf8(path: Path) -> str:
    """File contents as text; empty, binary and non-UTF-8 files are refused by name."""
    data = path.read_bytes()
    if not data.strip():
        raise SourceError(f"{path.name}: the file is empty")
    if b"\x00" in data[:8192]:
        raise SourceError(f"{path.name}: looks like a binary file, not text; check its format")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path.name}: not UTF-8 text (bad byte at position {exc.start}); re-save it as UTF-8"
        ) from None
    if not has_visible_text(text):  # what bytes.strip() keeps: U+00A0, U+200B, a lone BOM...
        raise SourceError(f"{path.name}: the file is empty (only blank or invisible characters)")
    return text


def sections_from_headings(headings: list[tuple[int, int, str]], text_end: int) -> tuple[Section, ...]:
    """Turn ``(level, offset, title)`` headings into nested sections with character ranges.

    A section runs from its heading to the next heading of the same or a higher level; its
    path is the nearest enclosing heading at each higher level, then its own title.
    """
    sections = []
    open_headings: dict[int, str] = {}
    for i, (level, offset, title) in enumerate(headings):
        open_headings = {lv: t for lv, t in open_headings.items() if lv < level}
        open_headings[level] = title
        end = next((o for lv, o, _ in headings[i + 1 :] if lv <= level), text_end)
        path = tuple(open_headings[lv] for lv in sorted(open_headings))
        sections.append(Section(path=path, start=offset, end=end))
    return tuple(sections)


# ---------------------------------------------------------------- plain text

_LIST_ITEM = re.compile(r"^\s*(?:[•*\-–]|\d+[.)])\s")


def _is_text_heading(line: str) -> bool:
    """A standalone short line that reads as a title: no list marker, no sentence ending.

    A trailing citation like ``(Liu et al., 2018)`` marks a reference line, not a heading.
    """
    stripped = line.strip()
    return (
        0 < len(stripped) <= 80
        and len(stripped.split()) <= 12
        and not _LIST_ITEM.match(line)
        and stripped[-1] not in ".,;:"
        and not is_citation_line(stripped)
    )


def load_text(path: Path) -> ParsedSource:
    text = read_utf8(path)
    headings: list[tuple[int, int, str]] = []
    offset = 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        alone = (i == 0 or not lines[i - 1].strip()) and (i + 1 == len(lines) or not lines[i + 1].strip())
        if alone and _is_text_heading(line):
            level = 1 if not headings and not text[:offset].strip() else 2
            lead = len(line) - len(line.lstrip())
            headings.append((level, offset + lead, line.strip()))
        offset += len(line)
    return ParsedSource(text=text, sections=sections_from_headings(headings, len(text)))


# ---------------------------------------------------------------- markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_MD_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link -> label
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?!\w)"), r"\1"),  # italic
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # inline code
]


def split_front_matter(raw: str, name: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    metadata = load_yaml(match.group(1), f"{name}: front matter") or {}
    if not isinstance(metadata, dict):
        raise SourceError(f"{name}: front matter must be a YAML mapping of field: value")
    return metadata, raw[match.end() :]


def render_markdown(body: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Plain text of a Markdown body (markup removed) and its ``(level, offset, title)`` headings."""
    out: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    fence = ""  # the marker of the open code block, if any
    for line in body.lstrip("\n").splitlines(keepends=True):
        newline = line[len(line.rstrip("\r\n")) :]
        content = line[: len(line) - len(newline)]
        marker = _MD_FENCE.match(content)
        if marker and (not fence or marker.group(1) == fence):
            # A fence line is markup: it becomes a blank line, so the code is its own paragraph.
            fence = "" if fence else marker.group(1)
            out.append(newline)
            offset += len(newline)
            continue
        if fence:  # code is kept verbatim: a "# comment" in it is not a heading
            out.append(content + newline)
            offset += len(content) + len(newline)
            continue
        heading = _MD_HEADING.match(content)
        if heading:
            content = heading.group(2)
        for pattern, replacement in _MD_INLINE:
            content = pattern.sub(replacement, content)
        if heading:
            headings.append((len(heading.group(1)), offset, content))
        out.append(content + newline)
        offset += len(content) + len(newline)
    return "".join(out), headings


def load_markdown(path: Path) -> ParsedSource:
    metadata, body = split_front_matter(read_utf8(path), path.name)
    text, headings = render_markdown(body)
    if not has_visible_text(text):
        raise SourceError(f"{path.name}: has front matter but no text")
    return ParsedSource(text=text, sections=sections_from_headings(headings, len(text)), metadata=metadata)


# ---------------------------------------------------------------- HTML

_SKIP_TAGS = frozenset({
    "script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg", "template", "iframe",
    "button",
})
_BLOCK_TAGS = frozenset({
    "p", "div", "li", "ul", "ol", "br", "tr", "table", "section", "article", "main", "blockquote", "pre",
    "figure", "figcaption", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "title",
})
_VOID_TAGS = frozenset({
    "br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr",
})


class _HtmlText(html.parser.HTMLParser):
    """Collects visible text as blocks, remembering which blocks are headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[int, str]] = []  # (heading level or 0, text)
        self.title = ""
        self._skip_depth = 0
        self._buffer: list[str] = []
        self._level = 0
        self._in_title = False

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text:
            if self._in_title:
                self.title = self.title or text
            else:
                self.blocks.append((self._level, text))
        self._buffer = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += tag not in _VOID_TAGS
            return
        if tag in _BLOCK_TAGS:
            self._flush()
            self._level = int(tag[1]) if re.fullmatch(r"h[1-6]", tag) else 0
            self._in_title = tag == "title"
            if tag == "li":
                self._buffer.append("• ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag in _BLOCK_TAGS:
            self._flush()
            self._level = 0
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._buffer.append(data)


def load_html(path: Path) -> ParsedSource:
    parser = _HtmlText()
    parser.feed(read_utf8(path))
    parser.close()
    parser._flush()
    parts: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for level, block in parser.blocks:
        if not has_visible_text(block.replace("•", "")):
            continue
        if level:
            headings.append((level, offset, block))
        parts.append(block)
        offset += len(block) + 2
    if not parts:
        raise SourceError(f"{path.name}: no readable text (only scripts, styles or navigation?)")
    metadata = {"title": parser.title} if parser.title else {}
    text = "\n\n".join(parts) + "\n"
    return ParsedSource(text=text, sections=sections_from_headings(headings, len(text)), metadata=metadata)


# ---------------------------------------------------------------- PDF


def load_pdf(path: Path) -> ParsedSource:
    from rag.pdf_text import read_pdf

    page_texts, metadata = read_pdf(path)
    parts: list[str] = []
    pages: list[Page] = []
    offset = 0
    for number, page_text in enumerate(page_texts, start=1):
        if not has_visible_text(page_text):
            continue
        pages.append(Page(number=number, start=offset, end=offset + len(page_text)))
        parts.append(page_text)
        offset += len(page_text) + 2
    if not parts:
        raise SourceError(f"{path.name}: the PDF has no text layer (scanned images?); run OCR on it first")
    return ParsedSource(text="\n\n".join(parts) + "\n", pages=tuple(pages), metadata=metadata)


LOADERS: dict[str, Callable[[Path], ParsedSource]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def parse_source(path: Path, max_bytes: int) -> ParsedSource:
    """Parse one file with the loader for its suffix, refusing unknown formats and huge files."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise SourceError(
            f"{path.name}: unknown format {path.suffix or '(no suffix)'!r}; supported: {', '.join(sorted(LOADERS))}"
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(
                f"{path.name}: {_human_size(size)} is over the {_human_size(max_bytes)} limit for a source; "
                "split the file or raise RAG_MAX_UPLOAD_BYTES"
            )
        return loader(path)
    except OSError as exc:  # unreadable (permissions), vanished, or a folder named like a file
        raise SourceError(f"{path.name}: cannot be read ({exc.strerror or exc.__class__.__name__}); "
                          "check the file and its permissions") from None


def _human_size(n_bytes: int) -> str:
    """``"512 bytes"``, ``"1.5 KB"``, ``"20.0 MB"`` (binary units), so small limits stay readable."""
    if n_bytes < 1024:
        return f"{n_bytes} bytes"
    if n_bytes < 1024 * 1024:
        return f"{n_bytes / 1024:.1f} KB"
    return f"{n_bytes / (1024 * 1024):.1f} MB"
