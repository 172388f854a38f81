"""Prose from a language model over the verified quotes, streamed, then checked sentence by sentence.

A :class:`ProseRun` streams the model's tokens (for the page and the terminal to show as they
come) and, once the reply is complete, checks it (``rag.check``). Failure never costs the
answer: a server that is down, slow, erroring or talking nonsense leaves the extractive answer
standing with a one-line notice.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rag.check import CheckedReply, SentenceCheck, SupportScorer, check_reply
from rag.llm import GenerationError, LLMConfig, stream_chat
from rag.prompt import answer_messages, numbered_passages
from rag.types import Answer


@dataclass(frozen=True)
class Prose:
    """The checked prose of one answer, or why there is none."""

    text: str | None  # the supported sentences; None when withheld, failed or not attempted
    sentences: tuple[SentenceCheck, ...] = ()
    withheld_because: str | None = None  # the model declined, or none of its sentences held up
    notice: str | None = None  # the model failed; the quoted answer stands
    reply: str = ""  # what the model wrote, unchecked
    first_token_s: float | None = None
    total_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The JSON fields beside the answer's own (``prose``, ``sentences``...)."""
        return {
            "prose": self.text,
            "sentences": [{"text": s.text, "markers": list(s.markers), "supported": s.supported,
                           "support": s.support, "reason": s.reason} for s in self.sentences],
            "prose_withheld_because": self.withheld_because,
            "generation_notice": self.notice,
        }


NOT_ATTEMPTED = Prose(None)


class ProseRun:
    """One generation: iterate :meth:`tokens` to stream, then read :meth:`result` for the checked prose.

    ``result()`` alone also works (it drains the stream first).
    """

    def __init__(self, answer: Answer, config: LLMConfig, scorer: SupportScorer, threshold: float) -> None:
        self.answer = answer
        self.config = config
        self.scorer = scorer
        self.threshold = threshold
        self._pieces: list[str] = []
        self._started = 0.0
        self._first: float | None = None
        self._error: GenerationError | None = None
        self._done = False
        self._result: Prose | None = None

    def tokens(self) -> Iterator[str]:
        """The reply as it streams in; stops quietly on failure (the result carries the notice)."""
        if self._done or self._started:
            return
        self._started = time.monotonic()
        if self.answer.abstained or not self.answer.citations:
            self._done = True  # no verified quotes, nothing the model may say
            return
        messages = answer_messages(self.answer.question, numbered_passages(self.answer))
        try:
            for piece in stream_chat(self.config, messages):
                if self._first is None:
                    self._first = time.monotonic() - self._started
                self._pieces.append(piece)
                yield piece
        except GenerationError as exc:
            self._error = exc
        finally:
            self._done = True

    def result(self) -> Prose:
        if self._result is None:
            for _ in self.tokens():
                pass
            self._result = self._finish()
        return self._result

    def _finish(self) -> Prose:
        if not self._started or (self.answer.abstained or not self.answer.citations):
            return NOT_ATTEMPTED
        reply = "".join(self._pieces)
        if self._error is not None:
            return self._timed(Prose(None, notice=f"Prose unavailable: {self._error}. Showing the quoted answer.",
                                     reply=reply))
        checked: CheckedReply = check_reply(reply, numbered_passages(self.answer), self.scorer, self.threshold)
        return self._timed(Prose(checked.prose, checked.sentences, checked.withheld_because, reply=reply))

    def _timed(self, prose: Prose) -> Prose:
        return dataclasses.replace(prose, first_token_s=self._first, total_s=time.monotonic() - self._started)
