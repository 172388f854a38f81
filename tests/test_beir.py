"""rag.eval.beir and eval/beir.py: BEIR loading, slicing, the embedding cache, scores, the script."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.eval.beir import cached_embeddings, load_beir, run_benchmark, slice_dataset
from rag.settings import REPO_ROOT, Settings

SCIFACT = REPO_ROOT.parent / "shared" / "bench" / "scifact"
SCRIPT = REPO_ROOT / "eval" / "beir.py"

DOCS = [
    {"_id": "d1", "title": "Cats", "text": "Cats sleep all day long.", "metadata": {}},
    {"_id": "d2", "title": "Rockets", "text": "Rockets burn liquid fuel.", "metadata": {}},
    {"_id": "d3", "title": "Dogs", "text": "Dogs bark at cats.", "metadata": {}},
    {"_id": "d4", "title": "Markets", "text": "Prices rise and fall.", "metadata": {}},
]
QUERIES = [
    {"_id": "q1", "text": "why do cats sleep", "metadata": {}},
    {"_id": "q2", "text": "what makes prices rise", "metadata": {}},
    {"_id": "q3", "text": "how do rockets fly", "metadata": {}},
    {"_id": "q9", "text": "a training query with no test judgment", "metadata": {}},
]
# After stop words, BM25 sees: q1 -> d1, d3 (d1 relevant); q2 -> d4 only (d4 and d2 relevant);
# q3 -> d2 only (d3 relevant). Hence per query nDCG@10 1, 1/(1 + 1/log2 3), 0 and recall 1, 1/2, 0.
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq2\td2\t1\nq3\td3\t1\n"
BM25_NDCG = (1 + 1 / (1 + 1 / math.log2(3)) + 0) / 3


def write_dataset(folder: Path, gzipped: bool = True) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = "".join(json.dumps(d) + "\n" for d in DOCS)
    if gzipped:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.write(corpus)
    else:
        (folder / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(QRELS, encoding="utf-8")
    return folder


@pytest.mark.parametrize("gzipped", [True, False])
def test_load_beir_reads_both_corpus_forms_and_keeps_only_judged_queries(tmp_path, gzipped):
    dataset = load_beir(write_dataset(tmp_path / "tiny", gzipped))
    assert dataset.name == "tiny"
    assert dataset.doc_ids == ("d1", "d2", "d3", "d4")
    assert dataset.doc_texts()[0] == "Cats Cats sleep all day long."  # BEIR's title + " " + text
    assert dict(dataset.queries) == {"q1": "why do cats sleep", "q2": "what makes prices rise",
                                     "q3": "how do rockets fly"}
    assert dataset.qrels["q2"] == {"d4": 1, "d2": 1}


def test_load_beir_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(RagError, match="no corpus.jsonl or corpus.jsonl.gz in"):
        load_beir(tmp_path)
    folder = write_dataset(tmp_path / "bad")
    (folder / "qrels" / "test.tsv").write_text(QRELS + "q1 d2 1\n", encoding="utf-8")
    with pytest.raises(RagError, match=r"test.tsv:6: expected 'query-id<TAB>corpus-id<TAB>score'"):
        load_beir(folder)
    (folder / "qrels" / "test.tsv").write_text(QRELS + "q7\td2\t1\n", encoding="utf-8")
    with pytest.raises(RagError, match="qrels name 1 queries absent from queries.jsonl, e.g. 'q7'"):
        load_beir(folder)


def test_slice_keeps_whole_judgments_and_fills_with_distractors(tmp_path):
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    sliced = slice_dataset(dataset, 3)  # room for one relevant doc (3 // 2), then distractors
    assert sliced.doc_ids == ("d1", "d2", "d3")
    assert list(sliced.queries) == ["q1"]
    assert sliced.qrels == {"q1": {"d1": 1}}
    assert all(set(r) <= set(sliced.doc_ids) for r in slice_dataset(dataset, 4).qrels.values())


def test_bm25_scores_match_the_hand_computed_values(tmp_path):
    results = run_benchmark(load_beir(write_dataset(tmp_path / "tiny")), None, modes=("bm25",))
    assert list(results) == ["bm25"]
    assert results["bm25"]["ndcg@10"] == round(BM25_NDCG, 4)
    assert results["bm25"]["recall@100"] == 0.5


def test_all_modes_run_and_dense_needs_an_embedder(tmp_path, embedder):
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    results = run_benchmark(dataset, embedder, cache_dir=tmp_path / "cache")
    assert list(results) == ["dense", "bm25", "hybrid"]
    assert results["dense"]["recall@100"] == 1.0  # flat search ranks all four documents
    assert results["hybrid"]["recall@100"] == 1.0
    assert 0 < results["hybrid"]["ndcg@10"] <= 1
    with pytest.raises(RagError, match="need an embedder"):
        run_benchmark(dataset, None, modes=("hybrid",))


def test_the_second_stage_reorders_the_fused_head_and_loses_no_document(tmp_path, embedder):
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    results = run_benchmark(dataset, embedder, modes=("hybrid",), second_stage=True)
    assert list(results) == ["hybrid", "hybrid+rescore"]
    assert results["hybrid+rescore"]["recall@100"] == results["hybrid"]["recall@100"] == 1.0
    assert 0 < results["hybrid+rescore"]["ndcg@10"] <= 1
    with pytest.raises(RagError, match="mode .sparse. is not one of dense, bm25, hybrid"):
        run_benchmark(dataset, embedder, modes=("sparse",))


def test_corpus_embeddings_are_cached_by_model_and_content(tmp_path, embedder):
    texts = ["alpha beta", "gamma"]
    first = cached_embeddings(embedder, texts, tmp_path)
    assert embedder.calls == [2]
    again = cached_embeddings(embedder, texts, tmp_path)
    assert embedder.calls == [2]  # read back, not re-encoded
    assert (again == first).all()
    (cache_file,) = tmp_path.iterdir()
    assert cache_file.name.startswith("fake-keyword-") and cache_file.suffix == ".npy"
    cached_embeddings(embedder, ["alpha beta", "gamma!"], tmp_path)
    assert embedder.calls == [2, 2] and len(list(tmp_path.iterdir())) == 2


def _script_main():
    spec = importlib.util.spec_from_file_location("beir_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_script_skips_cleanly_when_the_dataset_is_missing(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "absent")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stderr.startswith(f"skipped: no BEIR dataset at {tmp_path / 'absent'}")
    assert result.stdout == ""


def test_script_writes_the_report_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = _script_main()([str(write_dataset(tmp_path / "tiny")), "--modes", "bm25", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["modes"]["bm25"]["ndcg@10"] == round(BM25_NDCG, 4)
    counts = (report["dataset"], report["queries"], report["documents"], report["judgments"])
    assert counts == ("tiny", 3, 4, 4)
    assert f"| bm25 | {BM25_NDCG:.4f} | 0.5000 |" in capsys.readouterr().out


# ---------------------------------------------------------------- the real model on SciFact


@pytest.mark.slow
@pytest.mark.skipif(not (SCIFACT / "queries.jsonl").is_file(), reason=f"no SciFact copy at {SCIFACT}")
def test_scifact_slice_with_the_packaged_model(tmp_path, monkeypatch, capsys):
    """200 SciFact documents and the 99 test queries they fully answer, through the script."""
    from rag.embedding import load_embedder

    embedder = load_embedder(Settings())
    monkeypatch.setattr("rag.embedding.load_embedder", lambda _settings: embedder)
    args = [str(SCIFACT), "--sample", "200", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "r.json")]
    assert _script_main()(args) == 0
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert (report["documents"], report["queries"]) == (200, 99)
    modes = report["modes"]
    # Measured once and pinned: the slice, BM25 and the model are deterministic.
    assert modes["bm25"]["ndcg@10"] == pytest.approx(0.9064, abs=1e-4)
    assert modes["dense"]["ndcg@10"] == pytest.approx(0.9172, abs=0.005)
    assert modes["hybrid"]["ndcg@10"] == pytest.approx(0.9475, abs=0.005)
    assert report["published"] == {}  # published figures are for the whole dataset only
    assert "| dense | 0.91" in capsys.readouterr().out

    # The second run reads the corpus embeddings from the cache: only queries are encoded.
    calls = []
    encode = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts: calls.append(len(texts)) or encode(texts))
    assert _script_main()([*args, "--modes", "dense"]) == 0
    assert calls == [99]


def test_the_committed_scifact_run_reproduces_the_published_dense_figure():
    """The acceptance check on the full run kept in eval/reports (python eval/beir.py)."""
    report = json.loads((REPO_ROOT / "eval" / "reports" / "beir-scifact.json").read_text(encoding="utf-8"))
    assert (report["dataset"], report["queries"], report["documents"]) == ("scifact", 300, 5183)
    assert set(report["modes"]) == {"dense", "bm25", "hybrid", "hybrid+rescore"}
    # Issue 11's bar: the product's hybrid ranking (with its second stage) does not fall below 0.725.
    assert report["modes"]["hybrid+rescore"]["ndcg@10"] >= 0.725
    published = report["published"]["dense"][0]
    assert published["system"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert abs(report["modes"]["dense"]["ndcg@10"] - published["ndcg@10"]) <= 0.01
