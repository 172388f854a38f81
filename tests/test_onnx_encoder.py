"""The ONNX encoder against the sentence-transformers reference, with the real packaged model:
the same vectors on the eval questions and on passages of every loader's output, and a `rag ask`
process that never imports torch, transformers, sentence-transformers, scikit-learn or scipy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.build import build_index, chunker_settings, embedding_text
from rag.chunking import chunk_document
from rag.corpus import load_corpus
from rag.embedding import SentenceTransformerEmbedder, load_embedder
from rag.loaders import LOADERS
from rag.onnx_encoder import OnnxEmbedder
from rag.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.slow

HEAVY = ("torch", "transformers", "sentence_transformers", "sklearn", "scipy", "numba")
# What only builds and corpus changes need: the loaders and their parsers.
BUILD_ONLY = ("rag.build", "rag.corpus", "rag.loaders", "rag.metadata", "yaml", "pypdf")
QUESTIONS = [json.loads(line)["question"] for line in (REPO_ROOT / "eval" / "questions.jsonl").open()]


@pytest.fixture(scope="module")
def encoders() -> tuple[OnnxEmbedder, SentenceTransformerEmbedder]:
    """The ONNX encoder (exporting into the project's cache on first use) and the reference."""
    settings = Settings()
    onnx = load_embedder(settings)
    reference = load_embedder(settings.replace(encoder="sentence-transformers"))
    assert isinstance(onnx, OnnxEmbedder) and isinstance(reference, SentenceTransformerEmbedder)
    return onnx, reference


def _pdf_of(lines: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"pdf.fonttype": 42}):  # TrueType text: pypdf extracts it verbatim
        figure = plt.figure(figsize=(8.5, 11))
        for row, line in enumerate(lines):
            figure.text(0.05, 0.95 - 0.025 * row, line, fontsize=9)
        figure.savefig(path)
        plt.close(figure)


@pytest.fixture(scope="module")
def passages(tmp_path_factory) -> dict[str, list[str]]:
    """Chunks of each loader's output, by file suffix: the corpus (.md, .txt) plus an HTML page and a
    PDF made here from the corpus's own paragraphs."""
    corpus = Path(shutil.copytree(REPO_ROOT / "corpus", tmp_path_factory.mktemp("onnx") / "corpus"))
    paragraphs = [p for p in (corpus / "llm-faq-page.txt").read_text(encoding="utf-8").split("\n\n")
                  if len(p) > 80]
    body = "".join(f"<h2>Part {n}</h2><p>{p}</p>" for n, p in enumerate(paragraphs[:12]))
    (corpus / "page.html").write_text(f"<html><head><title>A page</title></head><body>{body}</body></html>",
                                      encoding="utf-8")
    words = " ".join(paragraphs[12:30]).split()
    _pdf_of([" ".join(words[i : i + 14]) for i in range(0, min(len(words), 14 * 36), 14)], corpus / "paper.pdf")
    by_suffix: dict[str, list[str]] = {}
    settings = Settings(corpus_dir=corpus)
    for document in load_corpus(corpus, settings.max_upload_bytes):
        chunks = chunk_document(document, chunker_settings(settings))
        by_suffix.setdefault(Path(document.path).suffix, []).extend(embedding_text(c) for c in chunks)
    return by_suffix


def _cosines(encoders, texts: list[str]) -> np.ndarray:
    onnx, reference = encoders
    return (onnx.encode(texts) * reference.encode(texts)).sum(axis=1)


def test_onnx_equals_sentence_transformers_on_every_eval_question(encoders):
    cosines = _cosines(encoders, QUESTIONS)
    assert len(cosines) == 306  # every question in eval/questions.jsonl
    assert cosines.min() >= 0.9999, f"question {QUESTIONS[int(cosines.argmin())]!r}: cosine {cosines.min():.6f}"


def test_onnx_equals_sentence_transformers_on_passages_of_every_loader(encoders, passages):
    # Every loader (some serve two suffixes), so a new loader without passages here fails this test.
    assert {LOADERS[suffix] for suffix in passages} == set(LOADERS.values())
    for suffix, texts in passages.items():
        cosines = _cosines(encoders, texts)
        assert cosines.min() >= 0.9999, f"{suffix} passage {int(cosines.argmin())}: cosine {cosines.min():.6f}"


def test_truncation_is_the_models_256_tokens_not_the_tokenizer_files_128(encoders, passages):
    # Past 256 tokens both encoders see the same first 256; tokenizer.json alone would cut at 128.
    onnx, reference = encoders
    long_text = " ".join(passages[".md"])[:6000]
    head, more = long_text[:900], long_text
    cosines = _cosines(encoders, [more, head, "", "a"])
    assert cosines.min() >= 0.9999
    assert float((onnx.encode([more]) * onnx.encode([long_text[:5000]])).sum()) > 0.99999  # cut at one place
    # ...which lies past 900 characters (~200 tokens): with a cut at 128 these two would be equal.
    assert float((onnx.encode([head]) * onnx.encode([more])).sum()) < 0.999


def test_a_batch_encodes_as_its_texts_do_alone(encoders):
    onnx, _ = encoders
    texts = QUESTIONS[:5] + ["A much longer question about how the reward model was trained from rankings?"]
    alone = np.vstack([onnx.encode([t]) for t in texts])
    assert ((onnx.encode(texts) * alone).sum(axis=1) >= 0.99999).all()


def test_rag_ask_process_answers_without_importing_torch_scipy_or_the_loaders(encoders, tmp_path):
    corpus = Path(shutil.copytree(REPO_ROOT / "corpus", tmp_path / "corpus"))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    report = build_index(settings, encoders[0])
    assert report.chunk_count > 0
    loaded = tmp_path / "modules.json"
    script = ("import json, sys\nfrom rag.cli import main\n"
              f"code = main(['ask', 'What does 3H stand for?', '--json', '--corpus', {str(corpus)!r}, "
              f"'--index', {str(settings.index_dir)!r}])\n"
              f"open({str(loaded)!r}, 'w').write(json.dumps(sorted(m for m in sys.modules "
              f"if m.split('.')[0] in {HEAVY!r} or m in {BUILD_ONLY!r})))\nsys.exit(code)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_ENCODER", None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(loaded.read_text()) == []
    answer = json.loads(done.stdout)
    assert answer["abstained"] is False
    assert answer["citations"][0]["source_id"] == "llm-faq-page"
    assert "Helpful, Harmless and Honest" in answer["citations"][0]["quote"]
    manifest = json.loads(next(settings.index_dir.glob("gen-*/manifest.json")).read_text())
    assert manifest["encoder"] == dict(encoders[0].provenance)
    assert set(manifest["encoder"]) == {"encoder", "model_sha256", "onnx_sha256"}
