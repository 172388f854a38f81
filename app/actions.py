"""The Sources page's two changes to the corpus, as plain functions of (settings, model, input).

They only sequence library calls, like ``rag add`` / ``rag remove`` do, so tests can call them
without a page. Nothing already indexed is lost on any failure: builds write a new index
generation and switch to it only when complete.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from rag.build import BuildReport, Progress, build_index
from rag.corpus import add_source, remove_source, safe_file_name
from rag.embedding import Embedder
from rag.errors import RagError
from rag.settings import Settings
from rag.types import Document


def upload_metadata(title: str = "", authors: str = "", year: str = "", venue: str = "",
                    url: str = "") -> dict[str, Any]:
    """Form fields as source metadata; authors are separated by semicolons or new lines."""
    names = [a.strip() for a in re.split(r"[;\n]", authors) if a.strip()]
    return {"title": title.strip(), "authors": names, "year": year.strip(), "venue": venue.strip(),
            "url": url.strip()}


def add_upload(config: Settings, model: Embedder, name: str, data: bytes, metadata: dict[str, Any],
               progress: Progress | None = None) -> tuple[Document, BuildReport]:
    """Copy an uploaded file into the corpus under a safe name, then index it.

    Raises:
        RagError: the file is refused (format, size, no text, a name or id already taken) or the
            build failed; in both cases the corpus folder is as it was.
    """
    file_name = safe_file_name(name)
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
        staged = Path(folder) / file_name
        staged.write_bytes(data)
        document = add_source(config.corpus_dir, staged, metadata, config.max_upload_bytes, file_name)
    try:
        report = build_index(config, model, progress)
    except RagError:
        remove_source(config.corpus_dir, document.id, config.max_upload_bytes)  # back as it was
        raise
    return document, report


def remove_and_reindex(config: Settings, model: Embedder, source_id: str,
                       progress: Progress | None = None) -> tuple[Document, BuildReport]:
    """Delete a source from the corpus folder, then rebuild the index without it."""
    document = remove_source(config.corpus_dir, source_id, config.max_upload_bytes)
    try:
        report = build_index(config, model, progress)
    except RagError as exc:
        raise RagError(f"{document.title!r} was removed from the corpus folder, but the index still holds "
                       f"it because the rebuild failed: {exc}") from exc
    return document, report
