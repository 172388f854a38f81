"""The index folder: immutable generations, an atomic ``CURRENT`` pointer, a build lock.

Layout::

    index/CURRENT            name of the generation being served
    index/gen-<ns>-<seal>/   manifest.json, vectors.faiss, vectors.npy, store.sqlite, bm25/,
                             lexicon.json, sentence_keys.npy + sentences.npy (rag.sentence_table)
    index/.build.lock        held by the one build allowed at a time

A build writes a whole new generation and only then replaces ``CURRENT`` (``os.replace`` is
atomic), so a build that fails or is killed at any instant leaves the old index serving.

The manifest holds the SHA-256 of every other file, and the generation's name, which ``CURRENT``
holds, ends in the manifest's (its first 32 hex digits, the "seal"): one digest vouches for the
whole generation, and a flipped bit anywhere is refused before it is served. A generation is
written as ``gen-<ns>`` and renamed to its sealed name only when complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import IndexBusyError, IndexStateError
from rag.lexical import LexicalIndex
from rag.sentence_table import SentenceTable
from rag.store import ChunkStore, write_store
from rag.types import Chunk, ChunkerSettings, Document
from rag.vector_index import build_vector_index, load_vector_index, save_vector_index

if TYPE_CHECKING:
    from rag.stores import GenerationPublisher

FORMAT_VERSION = 3  # 2: passages embedded without title/headings; BM25 k1 0.9, b 0.4. 3: sealed manifest
CURRENT = "CURRENT"
LOCK = ".build.lock"
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
FAISS = "vectors.faiss"
STORE = "store.sqlite"
BM25 = "bm25"
REBUILD = "run `rag build` to rebuild it"
# Files every generation has; a manifest without their checksums cannot vouch for them.
REQUIRED_FILES = (VECTORS, FAISS, STORE)
_GENERATION = re.compile(r"gen-([0-9]+)(?:-([0-9a-f]{32}))?")  # unsealed: from before v3, or unfinished
SEAL_DIGITS = 32


@dataclass(frozen=True)
class DocumentEntry:
    hash: str
    path: str
    chunks: int


@dataclass(frozen=True)
class Manifest:
    format_version: int
    model_name: str
    dimension: int
    chunker: ChunkerSettings
    index_kind: str
    chunk_count: int
    built_at: str
    documents: Mapping[str, DocumentEntry]
    checksums: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)  # file name -> why it is not indexed
    # How the vectors were made: encoder, model weights' sha256, ONNX export's sha256 (rag.embedding).
    encoder: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        body["chunker"] = ChunkerSettings(**body["chunker"])
        body["documents"] = {k: DocumentEntry(**v) for k, v in body["documents"].items()}
        return cls(**body)


@dataclass(frozen=True)
class Index:
    """A generation opened for serving."""

    folder: Path
    manifest: Manifest
    store: ChunkStore
    vectors: object  # faiss.Index
    lexical: LexicalIndex
    sentences: SentenceTable = field(default_factory=SentenceTable.empty)  # vectors of passages' sentences

    @property
    def generation(self) -> str:
        return self.folder.name


def current_generation(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexStateError(f"index pointer {pointer} cannot be read ({exc.__class__.__name__}); "
                              f"{REBUILD}") from None
    if not _GENERATION.fullmatch(name):
        raise IndexStateError(f"index pointer {pointer} holds {name[:40]!r}, not a generation name; {REBUILD}")
    folder = index_dir / name
    if not folder.is_dir():
        raise IndexStateError(f"index at {index_dir} points to a missing generation; {REBUILD}")
    return folder


def _served_or_none(index_dir: Path) -> Path | None:
    """The served generation, or ``None`` when the pointer is missing or broken (a build repairs it)."""
    try:
        return current_generation(index_dir)
    except IndexStateError:
        return None


def read_manifest(folder: Path) -> Manifest:
    """A generation's manifest as written; :func:`served_manifest` also checks it against ``CURRENT``."""
    try:
        return Manifest.from_json((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IndexStateError(
            f"index manifest in {folder} is unreadable ({exc.__class__.__name__}); {REBUILD}"
        ) from None


def served_manifest(index_dir: Path) -> tuple[Path, Manifest] | None:
    """The served generation and its manifest, vouched for by the seal in the generation's name.

    Raises:
        IndexStateError: the pointer is broken, or the manifest is missing, damaged or unsealed.
    """
    folder = current_generation(index_dir)
    if folder is None:
        return None
    seal = _GENERATION.fullmatch(folder.name).group(2)  # type: ignore[union-attr] - checked when read
    if seal is None:
        raise IndexStateError(f"index in {folder.name} has no checksum for {MANIFEST}; {REBUILD}")
    try:
        actual = _file_digest(folder / MANIFEST)[:SEAL_DIGITS]
    except OSError:
        raise IndexStateError(f"index file {MANIFEST} in {folder.name} is missing; {REBUILD}") from None
    if actual != seal:
        raise IndexStateError(f"index file {MANIFEST} in {folder.name} is damaged (checksum mismatch); {REBUILD}")
    return folder, read_manifest(folder)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a generation but its manifest, keyed by relative path.

    Files are hashed in parallel (hashlib releases the GIL): at a million chunks a generation
    holds three files of ~1.5 GB each, and every open verifies them.
    """
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]
    with ThreadPoolExecutor(max_workers=max(1, min(len(paths), os.cpu_count() or 1))) as pool:
        digests = list(pool.map(_file_digest, paths))
    return {str(p.relative_to(folder)): digest for p, digest in zip(paths, digests, strict=True)}


def check_compatible(manifest: Manifest, model_name: str, dimension: int | None) -> None:
    """Refuse an index built by another format, model or dimension than the one configured."""
    if manifest.format_version != FORMAT_VERSION:
        raise IndexStateError(f"index format v{manifest.format_version} is not the v{FORMAT_VERSION} "
                              f"this version reads; {REBUILD}")
    if manifest.model_name != model_name:
        raise IndexStateError(f"index was built with model {manifest.model_name!r}, but the configured "
                              f"model is {model_name!r}; {REBUILD}")
    if dimension is not None and manifest.dimension != dimension:
        raise IndexStateError(f"index vectors have dimension {manifest.dimension}, the model gives "
                              f"{dimension}; {REBUILD}")


def verify_checksums(folder: Path, manifest: Manifest) -> None:
    """Every file the manifest lists must exist with the same SHA-256, and the required ones be listed."""
    for name in (*REQUIRED_FILES, BM25):
        if not any(listed == name or listed.startswith(f"{name}/") for listed in manifest.checksums):
            raise IndexStateError(f"index in {folder.name} has no checksum for {name}; {REBUILD}")
    actual = file_checksums(folder)
    for name, expected in manifest.checksums.items():
        if actual.get(name) != expected:
            state = "missing" if name not in actual else "damaged (checksum mismatch)"
            raise IndexStateError(f"index file {name} in {folder.name} is {state}; {REBUILD}")


def open_index(index_dir: Path, model_name: str, dimension: int | None = None) -> Index:
    """Open the served generation after checking format, model, dimension and checksums."""
    served = served_manifest(index_dir)
    if served is None:
        raise IndexStateError(f"no index at {index_dir}; run `rag build` first")
    folder, manifest = served
    check_compatible(manifest, model_name, dimension)
    verify_checksums(folder, manifest)
    try:
        vectors = load_vector_index(folder / FAISS, manifest.index_kind)
        lexical = LexicalIndex.load(folder / BM25, manifest.chunk_count)
        store = ChunkStore(folder / STORE)
        sentences = SentenceTable.load(folder)
    except Exception as exc:  # any reader failure means the files are not what we wrote
        raise IndexStateError(f"index in {folder.name} cannot be read ({exc.__class__.__name__}); {REBUILD}") from None
    return Index(folder=folder, manifest=manifest, store=store, vectors=vectors, lexical=lexical,
                 sentences=sentences)


def load_vectors(folder: Path) -> np.ndarray:
    """The raw embeddings of a generation, memory-mapped (for reuse by incremental builds)."""
    return np.load(folder / VECTORS, mmap_mode="r")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_generation(index_dir: Path, manifest: Manifest, documents: list[Document],
                     chunks: list[Chunk], vectors: np.ndarray, lexical_texts: list[str],
                     extra_files: Mapping[str, str | bytes] | None = None,
                     publisher: GenerationPublisher | None = None) -> Manifest:
    """Write a complete generation, then make it current. Returns the manifest with checksums.

    ``extra_files`` (name -> text or bytes) are written beside the index and checksummed with it. A
    ``publisher`` (a Milvus backend) copies the generation before ``CURRENT`` moves and is told
    to serve it after, so a failure at any step leaves both the files and the backend serving
    the previous generation."""
    folder = index_dir / f"gen-{time.time_ns()}"
    folder.mkdir(parents=True)
    for name, content in (extra_files or {}).items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    np.save(folder / VECTORS, vectors)
    save_vector_index(build_vector_index(vectors, manifest.index_kind), folder / FAISS)
    write_store(folder / STORE, documents, chunks)
    (folder / BM25).mkdir()
    LexicalIndex.build(lexical_texts).save(folder / BM25)
    manifest = dataclasses.replace(manifest, checksums=file_checksums(folder))
    (folder / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)
    sealed = folder.with_name(f"{folder.name}-{_file_digest(folder / MANIFEST)[:SEAL_DIGITS]}")
    folder.rename(sealed)
    _fsync_dir(index_dir)
    if publisher:
        publisher.stage(sealed.name, vectors, lexical_texts, [c.doc_id for c in chunks], manifest.index_kind)
    previous = _served_or_none(index_dir)
    _point_current(index_dir, sealed.name)
    keep = {sealed.name} | ({previous.name} if previous else set())
    if publisher:
        publisher.commit(sealed.name, keep)
    _remove_stale_generations(index_dir, keep=keep)
    return manifest


def _point_current(index_dir: Path, name: str) -> None:
    tmp = index_dir / f".{CURRENT}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(name)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def remove_orphans(index_dir: Path) -> tuple[str, ...]:
    """Delete generations left by killed builds; call only while holding :func:`build_lock`.

    The lock means no live build is writing one. A build that completes keeps only its own
    generation and the one served before it, so every generation newer than the served one was
    never served, and of the older ones only the newest can still be open in a reader. With a
    broken pointer nothing is removed: the next complete build clears the folder.
    """
    served = _served_or_none(index_dir)
    if served is None:
        return ()
    number = _generation_number(served.name)
    generations = sorted((_generation_number(p.name), p) for p in index_dir.glob("gen-*")
                         if _GENERATION.fullmatch(p.name) and p.is_dir())
    older = [p for n, p in generations if n < number]
    orphans = [p for n, p in generations if n > number] + older[:-1]
    for folder in orphans:
        shutil.rmtree(folder, ignore_errors=True)
    return tuple(p.name for p in orphans)


def _generation_number(name: str) -> int:
    """When a generation was begun (``time.time_ns()``), from its name."""
    return int(_GENERATION.fullmatch(name).group(1))  # type: ignore[union-attr] - names are filtered


def _remove_stale_generations(index_dir: Path, keep: set[str]) -> None:
    """Drop older and half-written generations; the previous one stays for readers that hold it."""
    for folder in index_dir.glob("gen-*"):
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
    for leftover in index_dir.glob(f".{CURRENT}.*"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's build lock, or fail at once naming the process that has it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    handle = open(index_dir / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held open across the yield
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise IndexBusyError(f"another build is running on {index_dir} (pid {holder}); "
                                 "wait for it to finish and try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock, also when the process is killed
