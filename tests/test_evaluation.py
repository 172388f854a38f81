"""rag.eval on hand-labelled data: exact relevance, metrics, splits, recipes, report, gate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rag.assistant import RequestOptions, open_assistant
from rag.build import build_index
from rag.cli import main
from rag.eval.gate import Thresholds, load_thresholds, shortfalls
from rag.eval.metrics import rank_scores
from rag.eval.questions import (
    DEFAULT_QUESTIONS,
    EvalDataError,
    EvalQuestion,
    Evidence,
    EvidenceSpan,
    load_questions,
    locate_evidence,
)
from rag.eval.recipes import recipe_chunks, recursive_spans
from rag.eval.report import report_stem
from rag.eval.retrieval import judge
from rag.eval.run import run_evaluation
from rag.modes import Mode
from rag.types import Chunk, Document, Hit

LOG2_3 = math.log2(3)

# Hand-labelled against the tiny corpus (conftest): each section is one chunk, and BM25 ranks the
# two chunks sharing the question's words first and second (checked in test_bm25_ranks_below).
#   qa: evidence in the Sleeping chunk, ranked 1            -> hit 1, recall 1,   RR 1,   nDCG 1
#   qb: evidence in Propulsion (rank 2) and in Hunting, which BM25 never returns
#                                                           -> hit 0, recall 1/2, RR 1/2,
#                                                              nDCG (1/log2 3) / (1 + 1/log2 3)
#   qc: evidence in the Sleeping chunk, ranked 2            -> hit 0, recall 1,   RR 1/2, nDCG 1/log2 3
#   qd: unanswerable, left out of every retrieval metric
QUESTIONS = [
    {"id": "qa", "question": "How long does a house cat sleep?", "answerable": True,
     "evidence": [{"source_id": "cats", "quote": "A house cat sleeps about fifteen hours."}]},
    {"id": "qb", "question": "Why do rockets drop empty tanks?", "answerable": True,
     "evidence": [{"source_id": "rockets", "quote": "Liquid engines can be throttled."},
                  {"source_id": "cats", "quote": "They stalk silently before they pounce."}]},
    {"id": "qc", "question": "What do cats hunt at dawn?", "answerable": True,
     "evidence": [{"source_id": "cats", "quote": "Cats sleep for most of the day."}]},
    {"id": "qd", "question": "What is the boiling point of lead?", "answerable": False, "evidence": []},
]
NDCG_QB = (1 / LOG2_3) / (1 + 1 / LOG2_3)
EXPECTED_PER_QUESTION = {
    "qa": {"hit@1": 1.0, "recall@5": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0},
    "qb": {"hit@1": 0.0, "recall@5": 0.5, "mrr@10": 0.5, "ndcg@10": NDCG_QB},
    "qc": {"hit@1": 0.0, "recall@5": 1.0, "mrr@10": 0.5, "ndcg@10": 1 / LOG2_3},
}


def write_questions(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture
def questions_file(tmp_path: Path) -> Path:
    return write_questions(tmp_path / "questions.jsonl", QUESTIONS)


@pytest.fixture
def session(settings, embedder):
    build_index(settings, embedder)
    return open_assistant(settings, embedder)[0]


def hit(rank: int, doc_id: str, start: int, end: int, chunk_id: str) -> Hit:
    return Hit(Chunk(chunk_id, doc_id, "x" * (end - start), start, end), score=1.0 / rank, rank=rank)


# ---------------------------------------------------------------- relevance by span overlap


def test_judge_records_first_cover_under_evidence_key_and_everything_else_under_chunk_id():
    spans = (EvidenceSpan("q#0", "d", 10, 20, "a"), EvidenceSpan("q#1", "d", 50, 60, "b"))
    hits = [
        hit(1, "e", 10, 20, "c1"),  # same offsets, other source: not relevant
        hit(2, "d", 0, 10, "c2"),  # ends where the quote starts: [start, end) do not overlap
        hit(3, "d", 15, 55, "c3"),  # covers both quotes for the first time: both credited here
        hit(4, "d", 12, 18, "c4"),  # covers q#0 again: counted as non-relevant
    ]
    assert judge(hits, spans) == {"c1": 1.0, "c2": 0.5, "q#0": 1 / 3, "q#1": 1 / 3, "c4": 0.25}


def test_score_matches_hand_computed_values_for_the_judged_run():
    qrels = {"q": {"q#0": 1, "q#1": 1}}
    run = {"q": {"c1": 1.0, "c2": 0.5, "q#0": 1 / 3, "q#1": 1 / 3, "c4": 0.25}}
    means, per_question = rank_scores(qrels, run)
    # Relevant at positions 3 and 4; ideal ranking puts them at 1 and 2.
    ndcg = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / LOG2_3)
    assert means == pytest.approx({"hit@1": 0.0, "recall@5": 1.0, "mrr@10": 1 / 3, "ndcg@10": ndcg})
    assert per_question == {"q": pytest.approx(means)}


def test_a_question_without_hits_scores_zero():
    means, per_question = rank_scores({"q": {"q#0": 1}, "r": {"r#0": 1}}, {"q": {"q#0": 1.0}})
    assert per_question["r"] == {"hit@1": 0.0, "recall@5": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}
    assert means == pytest.approx({"hit@1": 0.5, "recall@5": 0.5, "mrr@10": 0.5, "ndcg@10": 0.5})


def test_locate_evidence_gives_exact_offsets_and_refuses_missing_quotes_or_sources():
    question = EvalQuestion("q1", "?", True, (Evidence("doc", "brown fox"),))
    spans = locate_evidence(question, {"doc": "the quick brown fox"}.get)
    assert spans == (EvidenceSpan("q1#0", "doc", 10, 19, "brown fox"),)
    with pytest.raises(EvalDataError, match=r"q1: evidence #0 is not verbatim in 'doc': 'brown fox'"):
        locate_evidence(question, {"doc": "the quick brown  fox"}.get)
    with pytest.raises(EvalDataError, match=r"q1: evidence source 'doc' is not indexed; .*rag build"):
        locate_evidence(question, {}.get)


# ---------------------------------------------------------------- the tiny corpus, end to end


def test_bm25_ranks_below(session):
    """The ranks the hand labels above rely on."""
    def ranked(question):
        passages = session.search(question, RequestOptions(k=10, mode="bm25"))
        return [(p.hit.chunk.doc_id, p.hit.chunk.section[-1]) for p in passages]

    assert ranked("How long does a house cat sleep?") == [("cats", "Sleeping"), ("cats", "Hunting")]
    assert ranked("Why do rockets drop empty tanks?") == [("rockets", "Staging"), ("rockets", "Propulsion")]
    assert ranked("What do cats hunt at dawn?") == [("cats", "Hunting"), ("cats", "Sleeping")]


def evaluate(session, questions_file, modes=(Mode.BM25,), recipes=False, progress=None):
    return run_evaluation(session, load_questions(questions_file), "questions.jsonl", modes, 10, recipes, progress)


def test_run_scores_each_question_as_labelled_by_hand(session, questions_file):
    report = evaluate(session, questions_file)
    assert report.splits == ["all"]  # the hand-made file has no split field
    result = report.retrieval_of("bm25", "all")
    assert set(result.per_question) == {"qa", "qb", "qc"}  # qd is unanswerable
    for qid, expected in EXPECTED_PER_QUESTION.items():
        assert result.per_question[qid] == pytest.approx(expected), qid
    assert result.metrics == pytest.approx({
        "hit@1": 1 / 3, "recall@5": 2.5 / 3, "mrr@10": 2 / 3, "ndcg@10": (1 + NDCG_QB + 1 / LOG2_3) / 3})


def test_failures_name_the_expected_evidence_and_what_ranked_first(session, questions_file):
    failures = {f.question.id: f for f in evaluate(session, questions_file).retrieval_of("bm25", "all").failures}
    assert sorted(failures) == ["qb", "qc"]
    qb = failures["qb"]
    assert qb.first_relevant_rank == 2
    assert (qb.top.rank, qb.top.chunk.doc_id) == (1, "rockets")
    assert qb.top.chunk.section == ("Rocket Basics", "Staging")
    document = session.index.store.document("rockets")
    assert [document.text[s.start:s.end] for s in qb.spans[:1]] == ["Liquid engines can be throttled."]
    assert failures["qc"].top.chunk.section == ("Hunting",)


def test_every_mode_and_recipe_is_scored_per_split_and_progress_reaches_the_total(session, tmp_path):
    items = [{**item, "split": "test" if item["id"] in ("qa", "qd") else "tune"} for item in QUESTIONS]
    seen = []
    report = evaluate(session, write_questions(tmp_path / "q.jsonl", items), tuple(Mode), True,
                      lambda done, total: seen.append((done, total)))
    assert report.systems() == ["dense", "bm25", "hybrid", "recipe:minilm-1000", "recipe:bm25s-1000"]
    assert report.splits == ["tune", "test"]
    assert report.counts["test"] == {"answerable": 1, "on-topic": 0, "off-topic": 0}
    assert seen[-1] == (19, 19)  # 3 answerable questions x 5 systems + 4 answers
    assert report.retrieval_of("bm25", "test").metrics["hit@1"] == 1.0  # qa alone
    assert report.retrieval_of("bm25", "tune").metrics["mrr@10"] == 0.5  # qb and qc, each at rank 2
    # Each tiny source is one recipe chunk, so a recipe passage is the whole document.
    assert report.retrieval_of("recipe:bm25s-1000", "tune").mean_passage_chars > \
        report.retrieval_of("bm25", "tune").mean_passage_chars
    assert report.answers_of("test").metrics["false_abstention"] == 0.0


def test_retrieval_alone_scores_the_same_and_composes_no_answer(session, questions_file, monkeypatch):
    full = evaluate(session, questions_file)
    monkeypatch.setattr(session, "ask", lambda *args, **kwargs: pytest.fail("an answer was composed"))
    seen = []
    alone = run_evaluation(session, load_questions(questions_file), "questions.jsonl", (Mode.BM25,), 10, False,
                           lambda done, total: seen.append((done, total)), answers=False)
    assert alone.retrieval == full.retrieval
    assert (alone.answers, alone.answers_of("all"), seen[-1]) == ((), None, (3, 3))  # 3 answerable, no answers
    assert "answers (" not in alone.table() and alone.to_dict()["splits"]["all"]["answers"] is None


def test_recursive_character_chunks_keep_offsets_and_overlap():
    text = ("a" * 400 + "\n\n" + "b" * 400 + "\n\n" + "c" * 400 + "\n" + "d " * 300)
    spans = recursive_spans(text, size=1000, overlap=200)
    # Paragraphs first, then the line break splits the 1003-character tail; no piece fits in 200.
    assert spans == [(0, 802), (804, 1204), (1205, 1804)]
    words = " ".join(f"w{i:03d}" for i in range(300))  # 1,499 characters of 4-letter words
    windows = recursive_spans(words, size=1000, overlap=200)
    assert windows[0] == (0, 999) and windows[-1][1] == len(words)
    assert all(e - s <= 1000 for s, e in windows)
    assert all(0 < a_end - b_start <= 200 for (_, a_end), (b_start, _) in zip(windows, windows[1:], strict=False))
    chunks = recipe_chunks([Document("d", "D", text)])
    assert [(c.start, c.end) for c in chunks] == spans
    assert all(text[c.start:c.end] == c.text for c in chunks)


# ---------------------------------------------------------------- report


def test_report_is_written_as_json_markdown_and_png(session, questions_file, tmp_path):
    report = evaluate(session, questions_file, tuple(Mode))
    data = report.to_dict()
    assert data["splits"]["all"]["questions"] == {"answerable": 3, "on-topic": 0, "off-topic": 0}
    bm25 = data["splits"]["all"]["retrieval"]["bm25"]
    assert bm25["metrics"]["mrr@10"] == 0.6667
    assert [f["id"] for f in bm25["failures"]] == ["qb", "qc"]
    assert bm25["failures"][0]["evidence"][0] == {"source_id": "rockets", "quote": "Liquid engines can be throttled.",
                                                  "start": 86, "end": 118}
    assert set(data["splits"]["all"]["answers"]["metrics"]) == set(data["answer_metrics"])

    paths = report.write(tmp_path / "reports")
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["splits"] == json.loads(json.dumps(data))["splits"]
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| bm25 | 25 | 0.333 | 0.833 | 0.667 | 0.673 | 2 |" in markdown.replace(
        f"| bm25 | {report.retrieval_of('bm25', 'all').mean_passage_chars:.0f} |", "| bm25 | 25 |")
    assert "![metrics per system](retrieval.png)" in markdown
    assert "bm25" in report.table() and "0.333     0.833     0.667     0.673" in report.table()


# ---------------------------------------------------------------- the gate


def test_shortfalls_lists_each_metric_out_of_bounds():
    measured = {"hybrid": {"hit@1": 0.5, "recall@5": 0.9, "mrr@10": 0.7, "ndcg@10": 0.8, "false_abstention": 0.1}}
    assert shortfalls(measured, Thresholds(Mode.HYBRID, "test", {"hit@1": 0.5, "recall@5": 0.8}, {})) == []
    assert shortfalls(measured, Thresholds(Mode.HYBRID, "test", {"hit@1": 0.51, "ndcg@10": 0.8},
                                           {"false_abstention": 0.05})) == [
        "hybrid hit@1 = 0.5000 is below the minimum 0.5100",
        "hybrid false_abstention = 0.1000 is above the maximum 0.0500"]
    with pytest.raises(EvalDataError, match="needs mode 'dense'"):
        shortfalls(measured, Thresholds(Mode.DENSE, "test", {"hit@1": 0.1}, {}))
    with pytest.raises(EvalDataError, match="checks answer@1, which this run did not measure"):
        shortfalls(measured, Thresholds(Mode.HYBRID, "test", {"answer@1": 0.1}, {}))


@pytest.mark.parametrize(("text", "message"), [
    ('mode = "hybrid"\nsplit = "test"\n[minimums]\n"map@10" = 0.5\n', "unknown metric 'map@10'"),
    ('mode = "hybrid"\nsplit = "test"\n[minimums]\n"hit@1" = 1.5\n', r"must be a number in \[0, 1\], got 1.5"),
    ('mode = "fancy"\nsplit = "test"\n[minimums]\n"hit@1" = 0.5\n', "mode 'fancy' is not one of"),
    ('mode = "hybrid"\nsplit = "dev"\n[minimums]\n"hit@1" = 0.5\n', "split 'dev' is not one of tune, test, all"),
    ('[minimums]\n"hit@1" = 0.5\n', "expected 'mode', 'split', a \\[minimums\\]"),
    ('mode = "hybrid"\n[minimums\n', "cannot read thresholds"),
])
def test_thresholds_file_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalDataError, match=message):
        load_thresholds(path)


@pytest.mark.parametrize(("modes", "recipes", "questions", "stem"), [
    ("all", True, DEFAULT_QUESTIONS, "retrieval"),
    ("hybrid", True, DEFAULT_QUESTIONS, "retrieval-hybrid"),
    ("all", False, DEFAULT_QUESTIONS, "retrieval-no-recipes"),
    ("bm25", False, Path("mine/typed.jsonl"), "retrieval-bm25-no-recipes-typed"),
])
def test_only_the_full_run_on_the_project_questions_owns_the_kept_report(modes, recipes, questions, stem):
    assert report_stem(modes, recipes, questions) == stem


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(monkeypatch, embedder, settings):
    monkeypatch.setattr("rag.embedding.load_embedder", lambda _settings: embedder)
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def test_cli_eval_builds_the_index_then_prints_json_report(cli_env, questions_file, tmp_path, capsys):
    code = main(["eval", *cli_env, "--questions", str(questions_file), "--mode", "bm25",
                 "--report-dir", str(tmp_path / "out"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert list(report["splits"]["all"]["retrieval"]) == ["bm25", "recipe:minilm-1000", "recipe:bm25s-1000"]
    assert report["splits"]["all"]["retrieval"]["bm25"]["metrics"]["hit@1"] == 0.3333
    assert "built the index first" in captured.err
    # A narrower run than the full one is named by its scope: it never replaces the kept report.
    assert [p.name for p in sorted((tmp_path / "out").iterdir())] == [
        "retrieval-bm25-questions.json", "retrieval-bm25-questions.md", "retrieval-bm25-questions.png"]


def test_cli_eval_gate_exits_nonzero_with_the_shortfall(cli_env, questions_file, tmp_path, capsys):
    gate = tmp_path / "gate.toml"
    gate.write_text('mode = "bm25"\nsplit = "test"\n[minimums]\n"hit@1" = 0.34\n"recall@5" = 0.8\n',
                    encoding="utf-8")
    args = ["eval", *cli_env, "--questions", str(questions_file), "--report-dir", str(tmp_path / "out"),
            "--no-recipes"]
    assert main([*args, "--mode", "bm25", "--gate", str(gate)]) == 1
    err = capsys.readouterr().err
    assert "bm25 hit@1 = 0.3333 is below the minimum 0.3400" in err  # no split field: gated on "all"
    assert "recall@5" not in err.splitlines()[-1]
    gate.write_text('mode = "bm25"\nsplit = "test"\n[minimums]\n"hit@1" = 0.33\n', encoding="utf-8")
    assert main([*args, "--mode", "bm25", "--gate", str(gate)]) == 0
    assert main([*args, "--mode", "dense", "--gate", str(gate)]) == 1
    assert "needs mode 'bm25'" in capsys.readouterr().err
