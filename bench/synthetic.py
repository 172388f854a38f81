"""A deterministic, seeded synthetic corpus: documents, chunks with exact offsets, and vectors.

Vectors are not uniform random. Uniform points on a 384-d sphere are all nearly orthogonal, so
every approximate index looks either perfect or hopeless on them. Instead a three-level
Gaussian model is fitted to real embeddings (all-MiniLM-L6-v2 on SciFact, bench/corpora.py):

    topic centre  c_t   k-means centroid of real document means, picked by real topic share
    document      m_d = c_t + A_doc z      A_doc: square root of the real between-document covariance
    chunk         x   = m_d + A_chunk z    A_chunk: the real within-document covariance

then normalised. Topic shares, chunks per document and both covariances (full 384 x 384, so
the anisotropy of real embeddings is kept) come from the real data; ``bench/scale.py`` checks
the generator by comparing recall of the approximate indexes on real vs synthetic vectors of
the same size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.chunking import chunk_id
from rag.types import Chunk, Document, Section


@dataclass(frozen=True)
class VectorModel:
    centres: np.ndarray  # (topics, d) unnormalised topic centres
    topic_share: np.ndarray  # (topics,) probabilities
    doc_factor: np.ndarray  # (d, d) with doc_factor @ doc_factor.T = between-document covariance
    chunk_factor: np.ndarray  # (d, d) within-document covariance factor
    chunks_per_doc: np.ndarray  # empirical sample of chunks per document


def _factor(residuals: np.ndarray) -> np.ndarray:
    """Symmetric square root of the residuals' covariance (eigenvalues clipped at zero)."""
    covariance = residuals.T @ residuals / max(len(residuals) - 1, 1)
    values, vectors = np.linalg.eigh(covariance.astype(np.float64))
    return (vectors * np.sqrt(np.clip(values, 0, None))).astype(np.float32)


def fit_vector_model(chunks: np.ndarray, doc_rows: np.ndarray, topics: int = 128,
                     seed: int = 0) -> VectorModel:
    """Fit the three-level model to real chunk vectors and their document numbering."""
    import faiss

    chunks = np.asarray(chunks, dtype=np.float32)
    n_docs = int(doc_rows.max()) + 1
    counts = np.bincount(doc_rows, minlength=n_docs)
    means = np.zeros((n_docs, chunks.shape[1]), dtype=np.float64)
    np.add.at(means, doc_rows, chunks)
    means = (means / counts[:, None]).astype(np.float32)

    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    kmeans = faiss.Kmeans(chunks.shape[1], topics, niter=25, seed=seed, spherical=True, verbose=False)
    kmeans.train(unit)
    _, assignment = kmeans.index.search(unit, 1)
    assignment = assignment[:, 0]
    share = np.bincount(assignment, minlength=topics).astype(np.float64)
    centres = np.stack([means[assignment == t].mean(axis=0) if share[t] else kmeans.centroids[t]
                        for t in range(topics)])
    doc_residuals = means - centres[assignment]

    multi = counts[doc_rows] > 1  # a lone chunk is its own mean and tells nothing about spread
    correction = np.sqrt(counts[doc_rows][multi] / (counts[doc_rows][multi] - 1))[:, None]
    chunk_residuals = (chunks[multi] - means[doc_rows[multi]]) * correction
    return VectorModel(centres=centres.astype(np.float32), topic_share=share / share.sum(),
                       doc_factor=_factor(doc_residuals), chunk_factor=_factor(chunk_residuals),
                       chunks_per_doc=counts)


def synthetic_vectors(model: VectorModel, n: int, seed: int,
                      block: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit float32 vectors and the document number of each, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    mean_per_doc = float(model.chunks_per_doc.mean())
    sizes = rng.choice(model.chunks_per_doc, size=int(n / mean_per_doc * 1.2) + 16)
    while sizes.sum() < n:
        sizes = np.concatenate([sizes, rng.choice(model.chunks_per_doc, size=len(sizes))])
    last = int(np.searchsorted(np.cumsum(sizes), n))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= int(sizes.sum() - n)
    doc_topics = rng.choice(len(model.centres), size=len(sizes), p=model.topic_share)
    dimension = model.centres.shape[1]
    doc_centres = (model.centres[doc_topics]
                   + rng.standard_normal((len(sizes), dimension), dtype=np.float32) @ model.doc_factor.T)
    doc_rows = np.repeat(np.arange(len(sizes)), sizes)
    vectors = np.empty((n, dimension), dtype=np.float32)
    for start in range(0, n, block):
        rows = doc_rows[start : start + block]
        part = doc_centres[rows] + rng.standard_normal((len(rows), dimension), dtype=np.float32) @ model.chunk_factor.T
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        vectors[start : start + len(rows)] = part
    return vectors, doc_rows


def targeted_queries(vectors: np.ndarray, alphas: np.ndarray, residuals: np.ndarray, n: int,
                     seed: int) -> np.ndarray:
    """Questions aimed at passages in the corpus, placed the way real questions sit off their answers.

    Real queries embedded against a synthetic corpus have no answer in it and sit far from every
    chunk, which is harder for approximate search than real use. Here a random chunk ``x`` gets a
    real claim's similarity to its gold passage, ``a``, and that claim's orthogonal remainder
    ``r`` made orthogonal to ``x``: ``q = a x + (r - (r . x) x)``, normalised
    (``bench/corpora.py:query_offsets``).
    """
    rng = np.random.default_rng(seed)
    targets = vectors[rng.integers(0, len(vectors), n)]
    picks = rng.integers(0, len(alphas), n)
    remainder = residuals[picks] - np.sum(residuals[picks] * targets, axis=1, keepdims=True) * targets
    queries = alphas[picks, None] * targets + remainder
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- text

_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor", "fen", "gal", "hep",
              "jor", "mun", "ost", "ple", "tra", "ven", "wis", "yel", "bri", "cho", "dra", "eth", "flo")


def vocabulary(size: int, seed: int) -> list[str]:
    """Distinct pseudo-words of 2-4 syllables (deterministic)."""
    rng = np.random.default_rng(seed)
    words: dict[str, None] = {}
    while len(words) < size:
        lengths = rng.integers(2, 5, size=size)
        picks = rng.integers(0, len(_SYLLABLES), size=(size, 4)).tolist()
        for length, row in zip(lengths.tolist(), picks, strict=True):
            words["".join(_SYLLABLES[p] for p in row[:length])] = None
    return list(words)[:size]


def _phrases(count: int, length: int, vocabulary_size: int, rng: np.random.Generator, seed: int) -> list[str]:
    """Phrases of Zipf-distributed words; paragraphs are drawn from these (fast at a million chunks)."""
    words = vocabulary(vocabulary_size, seed)
    cdf = np.cumsum(1.0 / np.arange(1, vocabulary_size + 1))
    cdf /= cdf[-1]
    picks = np.searchsorted(cdf, rng.random((count, length))).tolist()
    return [" ".join([words[w] for w in row]) for row in picks]


def synthetic_documents(n_chunks: int, seed: int, paragraph_chars: int = 550,
                        chunks_per_doc: int = 10, vocabulary_size: int = 20_000) -> tuple[list[Document], list[Chunk]]:
    """Documents of Zipf-distributed pseudo-words, one chunk per paragraph, exact offsets.

    Each document has two sections; chunk ``i`` is paragraph ``i`` and satisfies
    ``document.text[chunk.start:chunk.end] == chunk.text``.
    """
    rng = np.random.default_rng(seed)
    phrases = _phrases(50_000, 6, vocabulary_size, rng, seed)
    per_paragraph = max(paragraph_chars // 55, 1)
    documents: list[Document] = []
    chunks: list[Chunk] = []
    for d in range(-(-n_chunks // chunks_per_doc)):
        count = min(chunks_per_doc, n_chunks - d * chunks_per_doc)
        picks = rng.integers(0, len(phrases), size=(count, per_paragraph)).tolist()
        paragraphs = [", ".join([phrases[p] for p in row]).capitalize() + "." for row in picks]
        doc_id = f"syn-{d:07d}"
        title = f"Synthetic document {d}"
        parts, spans, offset = [], [], 0
        for i, paragraph in enumerate(paragraphs):
            if i in (0, (count + 1) // 2):
                heading = f"Part {1 if i == 0 else 2}"
                parts.append(heading + "\n\n")
                offset += len(heading) + 2
            spans.append((offset, offset + len(paragraph)))
            parts.append(paragraph + "\n\n")
            offset += len(paragraph) + 2
        text = "".join(parts)
        second = text.find("Part 2")
        sections = ((Section(("Part 1",), 0, second if second > 0 else len(text)),)
                    + ((Section(("Part 2",), second, len(text)),) if second > 0 else ()))
        document = Document(id=doc_id, title=title, text=text, authors=("Synthetic Author",), year=2000 + d % 25,
                            kind="md", path=f"{doc_id}.md", sections=sections)
        documents.append(document)
        for start, end in spans:
            chunks.append(Chunk(id=chunk_id(doc_id, start, text[start:end]), doc_id=doc_id, text=text[start:end],
                                start=start, end=end, section=document.section_at(start)))
    return documents, chunks


def write_markdown_corpus(folder: Path, documents: list[Document]) -> None:
    """The documents as Markdown sources with front matter, for runs of the real build path."""
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        body = document.text.replace("Part 1\n", "# Part 1\n").replace("Part 2\n", "# Part 2\n")
        (folder / document.path).write_text(
            f"---\nid: {document.id}\ntitle: {document.title}\nyear: {document.year}\n---\n{body}",
            encoding="utf-8")
