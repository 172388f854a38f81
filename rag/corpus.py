"""The corpus folder: source files plus ``sources.yaml`` with metadata for files that lack it.

Metadata precedence: ``sources.yaml`` entry, then the file's own front matter / PDF info,
then defaults derived from the file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rag.errors import SourceError, UnknownSourceError
from rag.loaders import LOADERS, parse_source
from rag.metadata import check_metadata, load_yaml, parse_authors  # noqa: F401 - parse_authors: the one rule, re-exported
from rag.types import Document

MANIFEST_NAME = "sources.yaml"
IGNORED_NAMES = frozenset({MANIFEST_NAME, "SOURCES.md", "README.md"})
MANIFEST_HEADER = (
    "# Metadata for sources whose files carry none of their own (Markdown files may use front\n"
    "# matter instead). Keys are file names in this folder; `rag add` maintains this file.\n"
)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "source"


def read_manifest(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    path = corpus_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot be read ({exc.__class__.__name__}); fix or delete it") from None
    data = load_yaml(text, str(path), "; fix or delete it") or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SourceError(f"{path}: expected a mapping of file name -> metadata mapping")
    return data


def write_manifest(corpus_dir: Path, manifest: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace ``sources.yaml`` atomically so a crash never leaves half a manifest."""
    text = MANIFEST_HEADER + yaml.safe_dump(dict(manifest), sort_keys=True, allow_unicode=True)
    _atomic_write(corpus_dir / MANIFEST_NAME, text.encode("utf-8"))


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` in one rename, keeping its file mode.

    ``mkstemp`` would make every rewrite 0600; a new file gets the mode ``open()`` gives (umask).
    """
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with contextlib.suppress(FileNotFoundError):
        os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_document(path: Path, metadata: Mapping[str, Any], max_bytes: int) -> Document:
    """Parse ``path`` and combine its own metadata with ``metadata`` (which wins)."""
    parsed = parse_source(path, max_bytes)
    merged = {**parsed.metadata, **{k: v for k, v in metadata.items() if v is not None and v != ""}}
    cited = check_metadata(merged, path.name)
    return Document(
        id=cited.id or slugify(path.stem),
        title=cited.title or path.stem.replace("-", " ").replace("_", " "),
        text=parsed.text,
        authors=cited.authors,
        year=cited.year,
        venue=cited.venue,
        url=cited.url,
        kind=cited.kind or path.suffix.lstrip(".").lower(),
        path=path.name,
        sections=parsed.sections,
        pages=parsed.pages,
        extra=cited.extra,
    )


def source_files(corpus_dir: Path) -> list[Path]:
    if not corpus_dir.is_dir():
        raise SourceError(f"corpus folder {str(corpus_dir)!r} does not exist; pass --corpus DIR")
    return sorted(
        p
        for p in corpus_dir.iterdir()
        if p.is_file() and p.name not in IGNORED_NAMES and not p.name.startswith(".")
        and p.suffix.lower() in LOADERS
    )


@dataclass(frozen=True)
class Skipped:
    """A file in the corpus folder that is not indexed, and why (the one-line refusal)."""

    file: str
    reason: str


@dataclass(frozen=True)
class CorpusScan:
    documents: tuple[Document, ...]
    skipped: tuple[Skipped, ...]


def scan_corpus(corpus_dir: Path, max_bytes: int) -> CorpusScan:
    """Every readable source in the folder as a document, and every other file with its reason.

    One unreadable file or a second use of an id skips that file only; a broken ``sources.yaml``
    or a missing folder still stops everything, as no source's metadata can be trusted then.
    """
    manifest = read_manifest(corpus_dir)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for path in source_files(corpus_dir):
        try:
            document = load_document(path, manifest.get(path.name, {}), max_bytes)
        except SourceError as exc:
            skipped.append(Skipped(path.name, str(exc)))
            continue
        if document.id in seen:
            skipped.append(Skipped(path.name, f"{document.path} and {seen[document.id]} both have id "
                                              f"{document.id!r}; give one a new id"))
            continue
        seen[document.id] = document.path
        documents.append(document)
    return CorpusScan(tuple(documents), tuple(skipped))


def load_corpus(corpus_dir: Path, max_bytes: int) -> list[Document]:
    """Every source in the folder as a document; any file that cannot be one is an error."""
    scan = scan_corpus(corpus_dir, max_bytes)
    if scan.skipped:
        raise SourceError(scan.skipped[0].reason)
    return list(scan.documents)


def document_hash(document: Document) -> str:
    """Content hash of everything that affects a document's chunks and citations."""
    payload = repr((document.text, document.sections, document.pages, document.title,
                    document.authors, document.year, document.venue, document.url, document.kind,
                    document.extra, document.path))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def safe_file_name(name: str) -> str:
    """A plain file name for an upload: no folders, no hidden files, safe characters only."""
    base = Path(name.replace("\\", "/")).name
    stem, suffix = os.path.splitext(base)
    # Bounded lengths: a file name over 255 bytes is an OSError, not a refusal.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)[:120].strip(".-") or "source"
    suffix = re.sub(r"[^a-z0-9]+", "", suffix.lower())[:16]  # no NUL or newline from the suffix either
    return f"{stem}.{suffix}" if suffix else stem


def add_source(corpus_dir: Path, file: Path, metadata: Mapping[str, Any], max_bytes: int,
               file_name: str | None = None) -> Document:
    """Validate ``file`` as a source, then copy it into the corpus with its metadata.

    Nothing in the corpus changes unless the file parses; an existing file or id is never
    overwritten.
    """
    if not file.is_file():
        raise SourceError(f"{str(file)!r} is not a file; check the path")
    source_files(corpus_dir)  # refuses a missing corpus folder before anything is staged
    name = safe_file_name(file_name or file.name)
    target = corpus_dir / name
    if target.exists():
        raise SourceError(f"{name}: a source with this file name already exists; rename the file")
    fields = {k: v for k, v in metadata.items() if v not in (None, "", ())}
    # Stage inside the corpus folder so the final move is an atomic rename on one filesystem.
    with tempfile.TemporaryDirectory(dir=corpus_dir, prefix=".staging-") as staging:
        staged = Path(staging) / name
        shutil.copyfile(file, staged)
        document = load_document(staged, fields, max_bytes)
        if document.id in {d.id for d in scan_corpus(corpus_dir, max_bytes).documents}:
            raise SourceError(f"{name}: a source with id {document.id!r} already exists; pass another --id")
        manifest = read_manifest(corpus_dir)
        manifest[name] = {**fields, "id": document.id}
        os.replace(staged, target)
        write_manifest(corpus_dir, manifest)
    return document


def remove_source(corpus_dir: Path, source_id: str, max_bytes: int) -> Document:
    """Delete a source file and its manifest entry."""
    documents = {d.id: d for d in scan_corpus(corpus_dir, max_bytes).documents}
    if source_id not in documents:
        raise UnknownSourceError(f"no source with id {source_id!r}; see `rag sources`")
    document = documents[source_id]
    manifest = read_manifest(corpus_dir)
    manifest.pop(document.path, None)
    write_manifest(corpus_dir, manifest)
    (corpus_dir / document.path).unlink()
    return document
