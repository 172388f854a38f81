"""HTML for answers, citation cards and source text.

Everything that comes from a source file or a user passes through :func:`html.escape` here
before it reaches ``st.html``, and links are only made for http(s) URLs. Text shown through
Markdown elements (alerts, captions) goes through :func:`md_escape` instead.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Sequence
from urllib.parse import urlparse

from rag.highlight import Passage, passages
from rag.reporting import format_authors, format_location
from rag.types import Answer, Document, Hit

NEAREST_CHARS = 420  # an abstention's reference passages are previews, not evidence
_MARKER = re.compile(r"\[(\d+)\]")
_CHIP = r'<span class="rag-cite">[\1]</span>'
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:=\"'])")

CSS = """
<style>
.rag-answer { font-size: 1.04rem; line-height: 1.7; }
.rag-answer p { margin: 0 0 .55rem 0; }
.rag-cite { display: inline-block; font-size: .72rem; font-weight: 700; line-height: 1.35;
  color: #1e40af; background: #e0e8ff; border-radius: 5px; padding: 0 .34rem; margin-left: .2rem;
  vertical-align: .12em; }
.rag-label { font-size: .72rem; font-weight: 700; letter-spacing: .06em; text-transform: uppercase;
  color: #6b7280; margin: .4rem 0 .45rem 0; }
.rag-cards { display: flex; flex-direction: column; gap: .65rem; }
.rag-card { border: 1px solid #e5e7eb; border-radius: 10px; padding: .8rem .95rem .75rem;
  background: #ffffff; box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }
.rag-card.rag-near { background: #fbfbfa; }
.rag-head { display: flex; gap: .4rem; align-items: baseline; }
.rag-head .rag-title { margin-left: .15rem; }
.rag-n { flex: none; font-size: .75rem; font-weight: 700; color: #fff; background: #3552c8;
  border-radius: 5px; padding: .04rem .42rem; }
.rag-near .rag-n { background: #9ca3af; }
.rag-title { font-weight: 600; line-height: 1.35; color: #111827; }
.rag-loc { color: #6b7280; font-size: .84rem; margin: .2rem 0 .55rem 0; }
.rag-passage { font-size: .94rem; line-height: 1.62; color: #374151; white-space: pre-line;
  border-left: 3px solid #d7def5; padding: .05rem 0 .05rem .8rem; }
.rag-near .rag-passage { border-left-color: #e5e7eb; color: #4b5563; }
.rag-passage mark { background: #fff0a0; color: #111827; border-radius: 3px; padding: .06rem .12rem;
  -webkit-box-decoration-break: clone; box-decoration-break: clone; }
.rag-ref { font-size: .84rem; color: #4b5563; margin-top: .6rem; line-height: 1.5; }
.rag-ref a { color: #1e40af; text-decoration: none; overflow-wrap: anywhere; }
.rag-ref a:hover { text-decoration: underline; }
.rag-user { font-size: 1.04rem; line-height: 1.6; white-space: pre-wrap; }
.rag-doc { font-size: .95rem; line-height: 1.65; white-space: pre-wrap; color: #1f2937; }
.rag-meta { font-size: .9rem; color: #4b5563; line-height: 1.55; }
.rag-meta a { color: #1e40af; text-decoration: none; overflow-wrap: anywhere; }
</style>
"""


def md_escape(text: str) -> str:
    """Backslash-escape Markdown syntax so file or user text shows literally in Markdown elements."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def http_url(url: str) -> str | None:
    """``url`` if it may be a link anywhere on the page (http or https), else ``None``.

    The one link rule: ``javascript:``, ``data:`` and ``file:`` URLs from a source's metadata are
    shown as text, never as something to click.
    """
    url = url.strip()
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    return url if scheme in ("http", "https") else None


def safe_link(url: str, label: str | None = None) -> str:
    """An anchor for an http(s) URL; anything else (``javascript:``, ``data:``) stays plain text."""
    if http_url(url) is None:
        return esc(label or url)
    return (f'<a href="{esc(url.strip())}" target="_blank" rel="noopener noreferrer nofollow">'
            f"{esc(label or url)}</a>")


def user_text(question: str) -> str:
    return f'<div class="rag-user">{esc(question)}</div>'


def answer_text(text: str) -> str:
    """The composed answer as paragraphs, each ``[n]`` marker drawn as a citation chip."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    body = "".join(f"<p>{_MARKER.sub(_CHIP, esc(p))}</p>" for p in paragraphs)
    return f'<div class="rag-answer">{body}</div>'


def reference(document: Document) -> str:
    """Authors (year). <em>Title</em>. Venue. link."""
    year = document.year if document.year is not None else "n.d."
    parts = [f"{esc(format_authors(document.authors))} ({esc(year)}). <em>{esc(document.title)}</em>."]
    if document.venue:
        parts.append(f"{esc(document.venue)}.")
    if document.url:
        parts.append(safe_link(document.url))
    return " ".join(parts)


def _location(section: tuple[str, ...], page: int | None) -> str:
    label = format_location(section, page)
    return f'<div class="rag-loc">{esc(label)}</div>' if label else ""


def passage_card(passage: Passage) -> str:
    """Citation numbers and title, section and page, the quotes marked in their passage, the reference."""
    several = len(passage.citations) > 1
    chips = "".join(f'<span class="rag-n">{c.n}</span>' for c in sorted(passage.citations, key=lambda c: c.n))
    places = [p for p in dict.fromkeys(format_location(c.section, c.page) for c in passage.citations) if p]
    where = f'<div class="rag-loc">{esc(" · ".join(places))}</div>' if places else ""
    pieces = passage.pieces()
    body = ["… " if passage.clipped_start else ""]
    for i, (text, citation) in enumerate(pieces):
        if citation is None:
            text = text.lstrip() if i == 0 else text
            text = text.rstrip() if i == len(pieces) - 1 else text
            body.append(esc(text))
        else:
            chip = f'<span class="rag-cite">[{citation.n}]</span>' if several else ""
            body.append(f"<mark>{esc(text)}</mark>{chip}")
    body.append(" …" if passage.clipped_end else "")
    return (
        f'<div class="rag-card"><div class="rag-head">{chips}'
        f'<span class="rag-title">{esc(passage.document.title)}</span></div>{where}'
        f'<div class="rag-passage">{"".join(body)}</div>'
        f'<div class="rag-ref">{reference(passage.document)}</div></div>'
    )


def nearest_card(hit: Hit, document: Document) -> str:
    """A passage shown for reference when the answer abstains: no highlight, a muted card."""
    chunk = hit.chunk
    return (
        '<div class="rag-card rag-near">'
        f'<div class="rag-head"><span class="rag-n">{hit.rank}</span>'
        f'<span class="rag-title">{esc(document.title)}</span></div>'
        f"{_location(chunk.section, chunk.page)}"
        f'<div class="rag-passage">{esc(textwrap.shorten(chunk.text, NEAREST_CHARS, placeholder=" …"))}</div>'
        f'<div class="rag-ref">{reference(document)}</div>'
        "</div>"
    )


def evidence(answer: Answer) -> str:
    cards = "".join(passage_card(p) for p in passages(answer.citations, answer.hits))
    return f'<div class="rag-label">Evidence</div><div class="rag-cards">{cards}</div>'


def nearest(passages: Sequence[tuple[Hit, Document]], label: bool = True) -> str:
    cards = "".join(nearest_card(hit, document) for hit, document in passages)
    heading = '<div class="rag-label">Nearest material</div>' if label else ""
    return f'{heading}<div class="rag-cards">{cards}</div>'


def snippet(label: str, title: str, location: str, text: str) -> str:
    """A labelled passage without a reference, e.g. an eval question's expected evidence."""
    where = f'<div class="rag-loc">{esc(location)}</div>' if location else ""
    return (f'<div class="rag-label">{esc(label)}</div><div class="rag-card rag-near">'
            f'<div class="rag-head"><span class="rag-title">{esc(title)}</span></div>{where}'
            f'<div class="rag-passage">{esc(text.strip())}</div></div>')


def document_meta(document: Document) -> str:
    return f'<div class="rag-meta">{reference(document)}</div>'


def document_text(text: str) -> str:
    return f'<div class="rag-doc">{esc(text)}</div>'
