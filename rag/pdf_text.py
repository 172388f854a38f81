"""pypdf behind one boundary: each page's text and the title and authors of a PDF, or the
project's one-line SourceError, and nothing printed on the way."""

from __future__ import annotations

import contextlib
import logging
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import SourceError

# What pypdf raises on damaged files besides its own PyPdfError, measured by bench/fuzz_pdfs.py
# (7,500 mutations of PDFs with Flate-compressed streams, README "Bad input"): AttributeError for
# an object that is only a reference, NotImplementedError for an unknown filter, TypeError for a
# /Length of the wrong kind, ValueError, and DeprecationError for the "/Fl" abbreviation (not a
# PyPdfError; DependencyError is handled apart). KeyError, OSError and AssertionError were caught
# before and stay; LookupError, ArithmeticError, RecursionError and zlib.error widen the same
# families (IndexError, a zero divisor, a reference cycle, a bad stream) though the run saw none.
# Anything else escaping pypdf is reported as a bug by the CLI.
_PDF_ERRORS: tuple[type[BaseException], ...] = (
    ArithmeticError, AssertionError, AttributeError, LookupError, NotImplementedError, OSError,
    RecursionError, TypeError, ValueError, zlib.error,
)


@contextlib.contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Keep pypdf's repair notes ("EOF marker not found") off stderr while it reads one file.

    They would print ahead of the one-line refusal; the file is either read or refused anyway.
    """
    logger = logging.getLogger("pypdf")
    handler, propagate = logging.NullHandler(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)


def _read(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Each page's text and the document's title and authors, as pypdf reads them."""
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted and not reader.decrypt(""):
        raise SourceError(f"{path.name}: the PDF is encrypted; save an unprotected copy and add that")
    page_texts = [(page.extract_text() or "").strip() for page in reader.pages]
    info = reader.metadata or {}
    metadata: dict[str, Any] = {}
    if info.get("/Title"):
        metadata["title"] = str(info["/Title"])
    if info.get("/Author"):
        metadata["authors"] = [a.strip() for a in str(info["/Author"]).split(";") if a.strip()]
    return page_texts, metadata


def read_pdf(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Each page's text (stripped) and ``{"title", "authors"}`` from the document information.

    Raises:
        SourceError: encrypted, damaged, or needing a package that is not installed.
    """
    from pypdf.errors import DependencyError, DeprecationError, PyPdfError

    try:
        with _quiet_pypdf():
            return _read(path)
    except DependencyError as exc:  # e.g. AES encryption without the `cryptography` package
        raise SourceError(f"{path.name}: reading this PDF needs a package that is not installed ({exc})") from None
    except (PyPdfError, DeprecationError, *_PDF_ERRORS) as exc:
        raise SourceError(
            f"{path.name}: not a readable PDF ({exc.__class__.__name__}); the file may be corrupt"
        ) from None
