"""End to end with the real packaged all-MiniLM-L6-v2 on the real corpus, through the ``rag`` CLI.

The model is loaded and the index built once per module; the tests then call the CLI against
that index, one of them loading the model again through the CLI's own path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rag.embedding
from rag.build import build_index
from rag.cli import main
from rag.settings import DEFAULT_MODEL, REPO_ROOT, Settings

pytestmark = pytest.mark.slow

SOURCE_IDS = {"anthropic2023-core-views", "askell2021-general-language-assistant", "liu2019-mtdnn",
              "llm-faq-page", "mehrabi2019-bias-fairness-survey", "ouyang2022-instructgpt"}
HIT_FIELDS = {"rank", "score", "source_id", "title", "section", "page", "text", "start", "end", "retrievers"}


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(corpus dir, index dir, embedder): the real model and an index of the real corpus."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        for name in ("RAG_MODEL_NAME", "RAG_MODEL_PATH", "RAG_CORPUS_DIR", "RAG_INDEX_DIR"):
            patch.delenv(name, raising=False)
        root = tmp_path_factory.mktemp("real")
        corpus = Path(shutil.copytree(REPO_ROOT / "corpus", root / "corpus"))
        settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
        embedder = rag.embedding.load_embedder(settings)
        assert (embedder.name, embedder.dimension) == (DEFAULT_MODEL, 384)
        report = build_index(settings, embedder)
        assert set(report.added) == SOURCE_IDS
        yield corpus, root / "index", embedder


@pytest.fixture
def cli_args(real, monkeypatch):
    corpus, index, _ = real
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("RAG_MODEL_NAME", "RAG_MODEL_PATH", "RAG_CORPUS_DIR", "RAG_INDEX_DIR"):
        monkeypatch.delenv(name, raising=False)
    return ["--corpus", str(corpus), "--index", str(index)]


def test_cli_search_finds_the_mt_dnn_caption_on_the_faq_page(real, cli_args, capsys):
    corpus, _, _ = real
    # This call loads the model through the CLI's own path, as a user's would.
    code = main(["search", "Which layers are shared across tasks in MT-DNN?", "--json", *cli_args])
    out, err = capsys.readouterr()
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 5
    assert all(set(h) == HIT_FIELDS for h in hits)
    faq = [h for h in hits if h["source_id"] == "llm-faq-page"
           and "lower layers are shared across all tasks" in h["text"]]
    assert faq, [(h["source_id"], h["text"][:60]) for h in hits]
    (hit,) = faq
    assert hit["section"] == "Large Language Models > Generality VS Efficiency"
    assert "(Liu et al., 2018)" in hit["text"]  # the caption came with its citation
    text = (corpus / "llm-faq-page.txt").read_text(encoding="utf-8")
    assert text[hit["start"]:hit["end"]] == hit["text"]
    assert hit["rank"] <= 2


def test_cli_batch_search_prints_one_line_per_question(real, cli_args, capsys, tmp_path, monkeypatch):
    _, _, embedder = real
    monkeypatch.setattr(rag.embedding, "load_embedder", lambda settings: embedder)  # reuse the loaded model
    questions = [json.loads(line) for line in
                 (REPO_ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:50]]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": q["id"], "question": q["question"]}) + "\n"
                             for q in questions), encoding="utf-8")
    code = main(["search", "--queries", str(batch), "--k", "5", "--json", *cli_args])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 50
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [q["id"] for q in questions]
    assert [r["question"] for r in rows] == [q["question"] for q in questions]
    for row in rows:
        assert set(row) == {"id", "question", "hits"}
        assert [h["rank"] for h in row["hits"]] == [1, 2, 3, 4, 5]
        assert {h["source_id"] for h in row["hits"]} <= SOURCE_IDS
    # A sanity floor, not the eval: most answerable questions find their evidence's source.
    answerable = [(q, r) for q, r in zip(questions, rows, strict=True) if q["evidence"]]
    found = sum(any(h["source_id"] in {e["source_id"] for e in q["evidence"]} for h in r["hits"])
                for q, r in answerable)
    assert found >= 0.8 * len(answerable), (found, len(answerable))
