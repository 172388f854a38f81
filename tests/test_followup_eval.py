"""The follow-up eval: the conversations file, and scoring with a hand-made search."""

from __future__ import annotations

import json

import pytest

from rag.eval.questions import EvalDataError
from rag.followup import Rewrite, rule_rewrite
from rag.followup_eval import DEFAULT_CONVERSATIONS, load_conversations, score_rewriter
from rag.settings import REPO_ROOT
from rag.types import Chunk, Hit

TEXT = "Cats sleep a lot. Cats hunt mice at dawn. Rockets burn fuel."


def test_the_committed_conversations_are_two_or_three_turns_with_verbatim_evidence():
    conversations = load_conversations(DEFAULT_CONVERSATIONS)
    assert len(conversations) >= 20
    assert {len(c.turns) for c in conversations} == {2, 3}
    assert sum(len(c.turns) - 1 for c in conversations) == 33
    files = {p.stem: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "corpus").iterdir()
             if p.suffix in (".md", ".txt")}
    for conversation in conversations:
        for turn in conversation.turns:
            for evidence in turn.evidence:
                assert evidence.quote in files[evidence.source_id], (turn.id, evidence.quote)


def test_a_conversation_needs_two_turns(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"id": "c1", "turns": [{"question": "q", "evidence": []}]}) + "\n")
    with pytest.raises(EvalDataError, match=r"c.jsonl:1: expected \{id, turns: \[two or more turns\]\}"):
        load_conversations(path)


def _chunk(text: str) -> Chunk:
    start = TEXT.index(text)
    return Chunk(text, "notes", text, start, start + len(text))


def test_hit_at_1_counts_follow_ups_whose_first_passage_holds_the_gold(tmp_path):
    path = tmp_path / "c.jsonl"
    turns = [{"question": "Do cats sleep?", "evidence": [{"source_id": "notes", "quote": "Cats sleep a lot."}]},
             {"question": "And what do they hunt?", "evidence": [{"source_id": "notes", "quote": "hunt mice"}]}]
    path.write_text(json.dumps({"id": "c1", "turns": turns}) + "\n")
    searched = []

    def search(question, sources):
        searched.append((question, sources))
        best = "Cats hunt mice at dawn." if "hunt" in question and "cats" in question.lower() else "Rockets burn fuel."
        if question.startswith("Do cats"):
            best = "Cats sleep a lot."
        return [Hit(_chunk(best), 1.0, 1)]

    conversations = load_conversations(path)
    plain = score_rewriter("as typed", lambda q, h: Rewrite(q), conversations, search, lambda s: TEXT)
    rule = score_rewriter("rule", lambda q, h: rule_rewrite(q, h, (), "previous"), conversations, search,
                          lambda s: TEXT)
    assert (plain.hit_at_1, rule.hit_at_1, rule.follow_ups) == (0.0, 1.0, 1)
    assert rule.results[0].searched == "And what do they hunt (cats sleep)?"
    assert searched[-1] == ("And what do they hunt (cats sleep)?", ("notes",))
