"""Incremental index builds: re-embed only new or changed documents, reuse the rest."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.chunking import ChunkerSettings, chunk_document
from rag.corpus import Skipped, document_hash, scan_corpus
from rag.embedding import Embedder, check_same_weights, encode_batched
from rag.errors import IndexStateError, SourceError
from rag.index_store import (
    FORMAT_VERSION,
    DocumentEntry,
    Manifest,
    build_lock,
    check_compatible,
    current_generation,
    load_vectors,
    remove_orphans,
    served_manifest,
    verify_checksums,
    write_generation,
)
from rag.loaders import LOADERS
from rag.reader.lexicon import LEXICON_FILE, mine_lexicon
from rag.reader.scoring import passage_sentence_spans
from rag.rescore import whole_sentences
from rag.sentence_table import SentenceTable
from rag.settings import Settings
from rag.store import ChunkStore
from rag.stores import generation_publisher
from rag.types import Chunk, Document
from rag.vector_index import choose_index_kind

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildReport:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    chunks_embedded: int
    chunk_count: int
    seconds: float
    generation: str
    skipped: tuple[Skipped, ...] = ()  # files in the corpus folder not indexed, with the reason
    # No source changed, yet a generation was written (a store backend lacked it, or skips changed).
    republished: bool = False
    sentences_embedded: int = 0  # the passages' sentences new to this generation (rag.sentence_table)

    @property
    def did_nothing(self) -> bool:
        return not (self.added or self.changed or self.removed or self.republished)


def embedding_text(chunk: Chunk) -> str:
    """What the dense model sees: the passage alone. Prefixing title and headings was measured
    to hurt all-MiniLM-L6-v2 on the project eval (dense hit@1 0.509 with, 0.605 without)."""
    return chunk.text


def lexical_text(chunk: Chunk, document: Document) -> str:
    """What BM25 sees: title and section words are repeated into the field to weigh them."""
    return "\n".join([document.title, *chunk.section, chunk.text])


def embed_texts(texts: list[str], embedder: Embedder, settings: Settings, progress: Progress | None) -> np.ndarray:
    """The new chunks' vectors: in this process, or on Ray when ``settings.ray`` names a cluster."""
    if settings.ray:
        from rag.ray_build import embed_on_ray  # Ray is an optional extra: imported only when asked

        return embed_on_ray(texts, embedder, settings, progress)
    return encode_batched(embedder, texts, settings.batch_size, progress)


def chunker_settings(settings: Settings) -> ChunkerSettings:
    return ChunkerSettings(size=settings.chunk_size, overlap=settings.chunk_overlap)


def _reusable(index_dir: Path, settings: Settings, embedder: Embedder) -> tuple[Path, Manifest] | None:
    """The served generation if its vectors can be reused by this build, else ``None``."""
    try:
        served = served_manifest(index_dir)
        if served is None:
            return None
        folder, manifest = served
        check_compatible(manifest, embedder.name, embedder.dimension)
        check_same_weights(manifest.encoder, embedder)  # vectors of other weights are re-embedded
        verify_checksums(folder, manifest)  # never reuse vectors or chunks from a damaged generation
    except IndexStateError:
        return None  # a broken or foreign index is simply rebuilt from scratch
    return (folder, manifest) if manifest.chunker == chunker_settings(settings) else None


def build_index(settings: Settings, embedder: Embedder, progress: Progress | None = None,
                force: bool = False) -> BuildReport:
    """Bring the index in line with the corpus folder; a no-op when nothing changed."""
    began = time.perf_counter()
    with build_lock(settings.index_dir), generation_publisher(settings) as publisher:
        remove_orphans(settings.index_dir)  # safe only under the lock: no live build is writing
        scan = scan_corpus(settings.corpus_dir, settings.max_upload_bytes)
        documents, skipped = list(scan.documents), scan.skipped
        if not documents:  # an index of nothing answers nothing, and BM25 cannot be built empty
            raise SourceError(_no_sources(settings.corpus_dir, skipped))
        previous = None if force else _reusable(settings.index_dir, settings, embedder)
        old_entries = previous[1].documents if previous else {}
        hashes = {d.id: document_hash(d) for d in documents}
        added = tuple(d.id for d in documents if d.id not in old_entries)
        changed = tuple(d.id for d in documents if d.id in old_entries and old_entries[d.id].hash != hashes[d.id])
        unchanged = tuple(d.id for d in documents if d.id in old_entries and old_entries[d.id].hash == hashes[d.id])
        removed = tuple(sorted(set(old_entries) - set(hashes)))
        skipped_reasons = {s.file: s.reason for s in skipped}
        # A backend that lacks the served generation (store just switched to Milvus) gets it written.
        # So does a generation from before sentence tables: its first questions would be slow.
        if (previous and not (added or changed or removed) and previous[1].skipped == skipped_reasons
                and (not publisher or publisher.ready(previous[0].name)) and SentenceTable.stored_in(previous[0])):
            return BuildReport(added, changed, removed, unchanged, 0, previous[1].chunk_count,
                               time.perf_counter() - began, previous[0].name, skipped)

        chunks, vectors, fresh_rows = _chunks_and_reused_vectors(documents, set(unchanged), previous, settings,
                                                                 embedder.dimension)
        by_id = {d.id: d for d in documents}
        # The passages' sentences are embedded with the new passages, in one pass (one progress bar).
        known = SentenceTable.load(previous[0]) if previous else SentenceTable.empty(embedder.dimension)
        sentence_texts = passage_sentences(chunks, by_id)
        new_sentences = [t for t, row in zip(sentence_texts, known.rows(sentence_texts), strict=True) if row < 0]
        encoded = embed_texts([embedding_text(chunks[r]) for r in fresh_rows] + new_sentences,
                              embedder, settings, progress)
        vectors[fresh_rows] = encoded[:len(fresh_rows)]
        sentences = known.extended(sentence_texts, dict(zip(new_sentences, encoded[len(fresh_rows):], strict=True)))
        # One pass: counting each document over all chunks was quadratic (3.5 s at 16k chunks, hours at 1M).
        per_document = Counter(c.doc_id for c in chunks)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_name=embedder.name,
            dimension=embedder.dimension,
            chunker=chunker_settings(settings),
            index_kind=choose_index_kind(len(chunks)),
            chunk_count=len(chunks),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            documents={d.id: DocumentEntry(hashes[d.id], d.path, per_document[d.id]) for d in documents},
            skipped=skipped_reasons,
            encoder=dict(getattr(embedder, "provenance", {})),
        )
        write_generation(settings.index_dir, manifest, documents, chunks, vectors,
                         [lexical_text(c, by_id[c.doc_id]) for c in chunks],
                         {LEXICON_FILE: mine_lexicon(documents).to_json(),  # acronyms, source names
                          **sentences.files()},
                         publisher)
        folder = current_generation(settings.index_dir)
        return BuildReport(added, changed, removed, unchanged, len(fresh_rows), len(chunks),
                           time.perf_counter() - began, folder.name if folder else "", skipped,
                           republished=bool(previous) and not (added or changed or removed),
                           sentences_embedded=len(new_sentences))


def passage_sentences(chunks: list[Chunk], documents: Mapping[str, Document]) -> list[str]:
    """Every sentence text the query path encodes for these passages: the whole sentences the
    second stage reads (``rescore.whole_sentences``) and the ones the reader quotes."""
    texts: dict[str, None] = {}
    for chunk in chunks:
        text = documents[chunk.doc_id].text
        for start, end in (*whole_sentences(text, chunk), *passage_sentence_spans(text, chunk)):
            texts[text[start:end]] = None
    return list(texts)


def _no_sources(corpus_dir: Path, skipped: tuple[Skipped, ...]) -> str:
    if skipped:  # the one reason is the useful one when a single file was all there was
        return (f"corpus folder {str(corpus_dir)!r} has no readable sources; skipped {len(skipped)}: "
                + "; ".join(s.reason for s in skipped[:3]) + (" …" if len(skipped) > 3 else ""))
    return (f"corpus folder {str(corpus_dir)!r} has no sources ({', '.join(sorted(LOADERS))}); "
            "add one with `rag add FILE`")


def _chunks_and_reused_vectors(documents: list[Document], unchanged: set[str],
                               previous: tuple[Path, Manifest] | None, settings: Settings,
                               dimension: int) -> tuple[list[Chunk], np.ndarray, list[int]]:
    """All chunks in corpus order, their vectors where an unchanged document's can be reused, and
    the rows still to embed (their vectors are zero until then)."""
    reused: dict[str, tuple[list[Chunk], np.ndarray]] = {}
    if previous and unchanged:
        store = ChunkStore(previous[0] / "store.sqlite")
        old_vectors = load_vectors(previous[0])
        try:
            for doc_id in unchanged:
                rows_chunks = store.chunks_of(doc_id)
                rows = [r for r, _ in rows_chunks]
                reused[doc_id] = ([c for _, c in rows_chunks], np.asarray(old_vectors[rows]))
        finally:
            store.close()

    chunks: list[Chunk] = []
    parts: list[np.ndarray] = [np.zeros((0, dimension), dtype=np.float32)]
    fresh_rows: list[int] = []
    for document in documents:
        if document.id in reused:
            doc_chunks, doc_vectors = reused[document.id]
        else:
            doc_chunks = chunk_document(document, chunker_settings(settings))
            doc_vectors = np.zeros((len(doc_chunks), dimension), dtype=np.float32)
            fresh_rows.extend(range(len(chunks), len(chunks) + len(doc_chunks)))
        chunks.extend(doc_chunks)
        parts.append(doc_vectors)
    return chunks, np.concatenate(parts).astype(np.float32), fresh_rows
