"""The question analyser a session holds: the corpus lexicon, the stop words, a cache of analyses.

Retrieval and the reader both analyse the question; the cache makes the second call free.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from rag.reader.lexicon import LEXICON_FILE, Lexicon, mine_lexicon
from rag.reader.question import Focus, analyse
from rag.types import Document

_CACHE = 256
_GENERATIONS = 4  # a server holds the served generation and, during a swap, the previous one
_BY_GENERATION: dict[str, QuestionAnalyser] = {}


@lru_cache(maxsize=1)
def question_stopwords() -> frozenset[str]:
    """Stemmed English stop words (bm25s's longer list): words like "what" or "does" carry no evidence."""
    from rag.lexical import bm25s_module, tokenize

    words = bm25s_module().stopwords.STOPWORDS_EN_PLUS  # not a bare import: that pulls numba and scipy
    return frozenset(tokenize([" ".join(words)])[0]) | frozenset(words)


class QuestionAnalyser:
    """Analyses questions against one corpus's lexicon (an empty lexicon: no names, no acronyms)."""

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or Lexicon()
        self._cache: OrderedDict[str, Focus] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_index(cls, folder: Path, documents: Callable[[], list[Document]]) -> QuestionAnalyser:
        """The lexicon stored with an index generation (mined from ``documents()`` when the
        generation predates it), one analyser per generation: generations never change, and the
        application layer makes a retriever per request."""
        key = str(folder)
        if key not in _BY_GENERATION:
            path = folder / LEXICON_FILE
            lexicon = Lexicon.from_json(path.read_text(encoding="utf-8")) if path.is_file() \
                else mine_lexicon(documents())
            if len(_BY_GENERATION) >= _GENERATIONS:
                _BY_GENERATION.pop(next(iter(_BY_GENERATION)))
            _BY_GENERATION[key] = cls(lexicon)
        return _BY_GENERATION[key]

    def analyse(self, question: str) -> Focus:
        with self._lock:  # one analyser serves every request thread of a generation
            focus = self._cache.get(question)
        if focus is None:
            focus = analyse(question, self.lexicon, question_stopwords())
        with self._lock:
            self._cache[question] = focus
            self._cache.move_to_end(question)
            if len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return focus
