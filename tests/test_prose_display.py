"""The terminal shows tokens as they stream, then the checked prose in their place."""

from __future__ import annotations

import io

from rag.check import SentenceCheck
from rag.generate import Prose
from rag.prose_display import prose_text, rows_taken, stream_then_correct

KEPT = SentenceCheck("Cats sleep fifteen hours [1].", (1,), True, 0.9)
DROPPED = SentenceCheck("Cats fly [1].", (1,), False, 0.1, "not supported by the sources")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_prose_text_says_what_was_removed_or_why_there_is_none():
    assert prose_text(Prose(KEPT.text, (KEPT, DROPPED))) == (
        "Cats sleep fifteen hours [1].\n(1 sentence(s) removed: not supported by the sources.)")
    assert prose_text(Prose(None, (DROPPED,), "None held up.")) == "Prose withheld: None held up."
    assert prose_text(Prose(None, notice="Prose unavailable: down. Showing the quoted answer.")) == (
        "Prose unavailable: down. Showing the quoted answer.")


def test_rows_taken_counts_wrapped_lines():
    assert rows_taken("abc", 80) == 1
    assert rows_taken("a" * 81, 80) == 2
    assert rows_taken("one\n\ntwo", 80) == 3


def test_a_terminal_sees_the_tokens_then_the_correction_in_place(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = Terminal()
    checked = Prose(KEPT.text, (KEPT, DROPPED))
    tokens = ["Cats sleep", " fifteen hours [1].", "\nCats fly [1]."]
    assert stream_then_correct(tokens, lambda: checked, out) is checked
    assert out.getvalue() == ("Cats sleep fifteen hours [1].\nCats fly [1]." "\x1b[1A\r\x1b[J"
                              "Cats sleep fifteen hours [1].\n(1 sentence(s) removed: not supported by the sources.)\n")


def test_a_pipe_gets_only_the_checked_prose():
    out = io.StringIO()
    stream_then_correct(iter(["never", "shown"]), lambda: Prose(KEPT.text, (KEPT,)), out)
    assert out.getvalue() == "Cats sleep fifteen hours [1].\n"
