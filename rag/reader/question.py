"""What a question asks: its terms (spelling corrected, acronyms expanded both ways), the sources
it names, the kind of answer it expects, and its focus, the thing asked for."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.lexical import text_terms
from rag.reader.content import asked_kinds
from rag.reader.english import is_english
from rag.reader.lexicon import _WORD, LINKING_WORDS, Lexicon, acronym_key

# Words that frame a question rather than say what it asks for: they never decide an abstention.
FRAME_WORDS = frozenset([
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "does", "do", "did", "is", "are",
    "was", "were", "be", "been", "can", "could", "should", "would", "will", "may", "might", "shall", "much",
    "many", "mean", "meaning", "stand", "stands", "use", "used", "using", "say", "says", "said", "tell",
    "tells", "told", "describe", "described", "mention", "mentioned", "according", "paper", "papers", "post",
    "page", "abstract", "survey", "work", "works", "author", "authors", "article", "blog", "text", "source",
    "sources", "document", "idea", "main", "point", "points", "thing", "things", "kind", "type", "types",
    "way", "ways", "part", "parts", "example", "examples", "like", "also", "really", "actually", "exactly",
    "specifically", "hey", "hi", "please", "thanks", "know", "wonder", "wondering", "curious", "quick",
    "question", "someone", "explain", "give", "get", "got", "sort",
    "year", "date", "month",  # "in what year": the answer's kind (a date question), not its subject
    "et", "al",  # "Askell et al.": a citation names a source
])
# Nouns that name a measure: a question asking for one asks for a figure.
_MEASURES = (r"number|percentage|share|size|value|score|accuracy|rate|length|count|cost|amount|budget|proportion|"
             r"fraction|ratio")
# A keyword query ("mt-dnn training epochs") has no question word to ask with; naming a measure
# or a unit of work is how it asks for a figure.
_KEYWORDS_ONLY = (r"^(?!.*\b(what|which|who|whom|whose|how|when|where|why|is|are|was|were|do|does|did|can|"
                  r"could|should|would|will|has|have|had|explain|describe|tell)\b)")
ANSWER_TYPES = (
    # "how many ...", and "what <measure>" with up to two words between ("What learning rate", "What
    # is the context length", "What maximum sequence length"): each asks for a figure.
    ("number", re.compile(r"\b(how (many|much|large|big|long|often)|by how|(what|which) ((is|was|are|were) )?"
                          rf"(the )?([\w-]+ ){{0,2}}?({_MEASURES}))\b"
                          rf"|{_KEYWORDS_ONLY}(?=.*\b({_MEASURES}|epochs|hours|headcount)\b)",
                          re.I)),
    # "Which three objectives", "What are the two paths": the count gives the answer's shape.
    ("list", re.compile(r"\b(which|what) ((are|were) )?(the )?(two|three|four|five|\d)\b|\blist\b", re.I)),
    ("person", re.compile(r"^\W*(who|whom)\b", re.I)),
    # "When was it released?" asks for a time; "When should the AI ask?" for a condition.
    ("date", re.compile(r"^\W*when (was|were|did)\b|\b(what|which) (year|date|month)\b"
                        rf"|{_KEYWORDS_ONLY}(?=.*\b(year|date|month)\b)", re.I)),
)
# The count in "which three objectives": it gives the answer's shape, which a sentence listing
# them need not repeat ("comparing imitation learning, binary discrimination, and ranked ...").
_COUNT = re.compile(r"\d+|two|three|four|five|six|seven|eight|nine|ten", re.I)
_MAX_EXPANSIONS = 3  # an initialism matching more word runs than this is too ambiguous to use


@dataclass(frozen=True)
class Focus:
    """A question, analysed."""

    question: str
    corrected: str  # the question with misspelled words replaced by the corpus's nearest words
    expansions: tuple[str, ...]  # acronyms' expansions and expansions' acronyms
    terms: tuple[str, ...]  # stemmed content terms of the corrected question and its expansions
    named: tuple[str, ...]  # ids of the sources the question names
    name_terms: frozenset[str]  # stemmed terms and acronym keys that only serve to name a source
    answer_type: str  # "number", "list", "person", "date" or ""
    focus_words: tuple[str, ...]  # surface words of what is asked for (not frame words, not names)
    asked_for: tuple[str, ...] = ()  # the words right after the question word: "What learning rate ..."
    # Non-content kinds the question asks about ("What does the diagram show?" -> figure caption),
    # which may then answer it (rag.reader.content.asked_kinds).
    admits: frozenset[str] = frozenset()
    # The words, lower-cased, that name a source here (:func:`naming_words`): "mt-dnn", not "task".
    name_words: frozenset[str] = frozenset()

    @property
    def search_text(self) -> str:
        """What the retrievers see: the corrected question and the expansions of its acronyms."""
        return " ".join([self.corrected, *self.expansions])

    @property
    def content_text(self) -> str:
        """The search text without the words that only name a source: what the passage must say.

        "On how many NLU tasks did MT-DNN set a new state of the art?" asks about "NLU tasks" and
        "state of the art"; "MT-DNN" says where to look, and matching it favours the passage that
        names the paper most, its abstract, over the one that answers.
        """
        kept = [w for w in _WORD.findall(self.search_text) if not self._names(w)]
        return " ".join(kept) or self.search_text

    def _names(self, word: str) -> bool:
        return word.lower() in self.name_words

    @property
    def focus_terms(self) -> tuple[str, ...]:
        return distinct_stems(self.focus_words)

    @property
    def asked_terms(self) -> tuple[str, ...]:
        """Stems of :attr:`asked_for`: what the answer must name."""
        return distinct_stems(self.asked_for)


# A word's or a text's stemmed terms: rag.lexical.text_terms, one memory for the reader and the second stage.
stems = text_terms


def distinct_stems(words: Sequence[str]) -> tuple[str, ...]:
    """The stems of ``words``, each once, in order."""
    return tuple(dict.fromkeys(t for w in words for t in stems(w)))


def is_frame_word(word: str) -> bool:
    """A frame word in any inflection ("kinds", "described")."""
    lower = word.lower()
    terms = stems(lower)
    return lower in FRAME_WORDS or bool(terms) and set(terms) <= _frame_stems()


@functools.cache
def _frame_stems() -> frozenset[str]:
    return frozenset(t for w in FRAME_WORDS for t in stems(w))


def _edit_distance(a: str, b: str, bound: int) -> int:
    """Levenshtein distance, or ``bound + 1`` as soon as it must exceed ``bound``."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > bound:
            return bound + 1
        previous = current
    return previous[-1]


def correct(word: str, vocabulary: Mapping[str, int], stopwords: frozenset[str]) -> str:
    """The corpus content word nearest ``word`` (one edit under 7 letters, two from 7), else ``word``.
    Stop words, frame words and English words ("accuracy", which the corpus lacks) are never
    corrected, nor corrected to."""
    lower = word.lower()
    if len(lower) < 5 or not lower.isalpha() or lower in vocabulary or is_frame_word(lower) or lower in stopwords:
        return word
    if is_english(lower):
        return word
    bound = 1 if len(lower) < 7 else 2
    best, best_distance, tied = word, bound + 1, False
    for candidate in vocabulary:
        if abs(len(candidate) - len(lower)) > bound or candidate in stopwords or candidate[0] != lower[0]:
            continue
        distance = _edit_distance(lower, candidate, bound)
        if distance < best_distance:
            best, best_distance, tied = candidate, distance, False
        elif distance == best_distance and distance <= bound:
            tied = tied or vocabulary[candidate] == vocabulary.get(best, 0)
            if vocabulary[candidate] > vocabulary.get(best, 0):
                best = candidate
    return word if best_distance > bound or tied else best


def expansions_of(words: Sequence[str], lexicon: Lexicon) -> list[str]:
    """Expansions of the acronyms in ``words``, and the acronyms of expansions spelled out in them."""
    found: list[str] = []
    lowered = " ".join(w.lower() for w in words)
    for word in words:
        key = acronym_key(word)
        looks_like = sum(c.isupper() for c in word) >= 2 or word.lower() not in lexicon.vocabulary
        if key in lexicon.acronyms:
            found += lexicon.acronyms[key]
        elif looks_like and len(key) >= 3 and 0 < len(lexicon.initialisms.get(key, ())) <= _MAX_EXPANSIONS:
            found += lexicon.initialisms[key]
    for key, runs in lexicon.acronyms.items():
        if any(run.lower() in lowered for run in runs):
            found.append(lexicon.spellings.get(key, key))
    return list(dict.fromkeys(found))


def _alias_df(lexicon: Lexicon) -> dict[str, int]:
    """In how many sources' names each stemmed term occurs: a term many share names none of them."""
    counts: dict[str, int] = {}
    for names in lexicon.aliases.values():
        for term in {t for name in names for t in stems(name)}:
            counts[term] = counts.get(term, 0) + 1
    return counts


def naming_words(runs: Sequence[Sequence[str]], name_terms: frozenset[str], keys: frozenset[str],
                 alias_terms: frozenset[str]) -> frozenset[str]:
    """The words (lower-cased) that name a source: a name's own key ("MT-DNN", "Anthropic's"), and
    runs of adjacent words of a named source's names holding a term that named it ("the general
    language assistant", "multi-task DNN"), in the question and in each expansion. A lone word of a
    name among others is content: "common to every task" asks about tasks, though "Multi-Task"
    names MT-DNN."""
    def of_a_name(word: str) -> bool:
        return acronym_key(word) in keys or bool(stems(word)) and set(stems(word)) <= alias_terms | name_terms

    found: set[str] = set()
    for words in runs:
        for is_name, group in itertools.groupby(words, key=of_a_name):
            run = list(group) if is_name else []
            if len(run) > 1 and any(acronym_key(w) in name_terms or set(stems(w)) & name_terms for w in run):
                found.update(w.lower() for w in run)
            found.update(w.lower() for w in run if acronym_key(w) in keys)
    return frozenset(found)


def named_sources(words: Sequence[str], terms: set[str], lexicon: Lexicon
                  ) -> tuple[list[str], set[str], set[str]]:
    """Sources the question names, the terms and acronym keys that named them, and of those the
    keys of single-word names ("mtdnn", "anthropic"), which name a source on their own."""
    keys = {acronym_key(w) for w in words}
    shared = _alias_df(lexicon)
    named, used, strong_keys = [], set(), set()
    for source_id, phrases in lexicon.aliases.items():
        strong = {acronym_key(s) for s in lexicon.strong.get(source_id, ())} & keys
        distinctive = {t for p in phrases for t in stems(p) if shared.get(t) == 1} & terms
        if strong or len(distinctive) >= 2:
            named.append(source_id)
            used |= distinctive | strong
            strong_keys |= strong
    return named, used, strong_keys


_QUESTION_WORDS = frozenset({"what", "which", "who", "how"})
_QUANTITY_AFTER_HOW = frozenset({"many", "much", "large", "big", "long", "often", "old"})


def asked_for(words: Sequence[str], focus_words: Sequence[str]) -> tuple[str, ...]:
    """The focus words right after the first question word, up to the verb or a function word:
    the thing the answer must name ("What learning rate was ..." -> learning rate; "How many GPUs
    ..." -> GPUs; "Who hired ..." -> hired), or every focus word of a keyword query. Empty for
    "What is X?"."""
    lowered = [w.lower() for w in words]
    wanted = {w.lower() for w in focus_words}
    start = next((i for i, w in enumerate(lowered) if w in _QUESTION_WORDS), None)
    if start is None:
        # A keyword query asks for all it names ("mt-dnn training epochs"); a request ("Can you
        # explain X?") for no word in particular.
        return tuple(focus_words) if is_keyword_query(" ".join(words)) else ()
    at = start + 1
    following = lowered[at] if at < len(lowered) else ""
    if (lowered[start] == "how" and following in _QUANTITY_AFTER_HOW) or _COUNT.fullmatch(following):
        at += 1  # "How many GPUs ...", "Which three objectives ..."
    head = []
    while at < len(lowered) and (lowered[at] in wanted or lowered[at] in ("and", "of", "the") and head):
        if lowered[at] in wanted:  # "What value of the pretraining-mix coefficient ..." reads through "of"
            head.append(words[at])
        at += 1
    return tuple(head)


_KEYWORD_QUERY = re.compile(_KEYWORDS_ONLY, re.I)


def is_keyword_query(question: str) -> bool:
    """Typed as search terms, with no question word or verb to frame them: "mt-dnn shared layers"."""
    return bool(_KEYWORD_QUERY.match(question))


def answer_type(question: str) -> str:
    return next((name for name, pattern in ANSWER_TYPES if pattern.search(question)), "")


def analyse(question: str, lexicon: Lexicon, stopwords: frozenset[str]) -> Focus:
    words = _WORD.findall(question)
    corrected_words = [correct(w, lexicon.vocabulary, stopwords) for w in words]
    corrected = question
    for word, fixed in zip(words, corrected_words, strict=True):
        if fixed != word:
            corrected = re.sub(rf"\b{re.escape(word)}\b", fixed, corrected, count=1)
    expansions = expansions_of(corrected_words, lexicon)
    terms = [t for t in stems(" ".join([corrected, *expansions])) if t not in stopwords]
    named, name_terms, name_keys = named_sources(corrected_words, set(terms), lexicon)
    kind = answer_type(question)
    alias_terms = frozenset(t for source_id in named for p in lexicon.aliases.get(source_id, ()) for t in stems(p))
    names = naming_words([corrected_words, *(_WORD.findall(e) for e in expansions)], frozenset(name_terms),
                         frozenset(name_keys), alias_terms)
    focus_words = [w for w in corrected_words
                   if not (kind == "list" and _COUNT.fullmatch(w))
                   and not is_frame_word(w) and w.lower() not in LINKING_WORDS
                   and stems(w) and w.lower() not in names
                   and not set(stems(w)) <= stopwords]
    return Focus(question, corrected, tuple(expansions), tuple(dict.fromkeys(terms)), tuple(named),
                 frozenset(name_terms), kind, tuple(focus_words), asked_for(corrected_words, focus_words),
                 asked_kinds(question), names)


_NUMBER_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|dozens?|half|twice|double)\b", re.I)
# "175B", "1.3", "0.1%" as written; not the digits of a name ("GPT-3.5", "T5"), which count nothing.
_FIGURE = re.compile(r"(?<![\w.-])\d[\d.,]*\w*")


def numbers_in(text: str) -> set[str]:
    """The figures a text states, as written ("175B", "three"), lower-cased; not those in names."""
    return {m.group().lower().rstrip(".,") for m in _FIGURE.finditer(text)} | {
        m.group().lower() for m in _NUMBER_WORDS.finditer(text)} - {"one"}  # a pronoun as often as a count


_DATE = re.compile(r"\b(1[89]|20)\d\d\b|\b(january|february|march|april|may|june|july|august|september|october|"
                   r"november|december)\b", re.I)


def dates_in(text: str) -> set[str]:
    """The years and months a text states, lower-cased ("2022", "march")."""
    return {m.group().lower() for m in _DATE.finditer(text)}


def has_new_number(text: str, question: str) -> bool:
    """``text`` states a figure the question does not: "How many GPUs trained the 175B model?" is
    not answered by a sentence whose only figure is 175B."""
    return bool(numbers_in(text) - numbers_in(question))


# How near (in words) a figure must stand to the thing counted: "ten NLU tasks", "82.7% on GLUE".
FIGURE_WINDOW = 3
# Words that say a figure is wanted, not what it measures.
QUANTITY_WORDS = frozenset({"long", "large", "big", "often", "much", "many", "number", "value", "roughly",
                             "about", "approximately", "exactly"})
# "How much smaller is X than Y?" asks for a ratio or a difference, which any figure may state.
_COMPARATIVES = frozenset({"more", "less", "fewer", "larger", "smaller", "bigger", "longer", "shorter", "higher",
                           "lower", "faster", "slower", "better", "worse", "greater"})


_AUXILIARIES = frozenset({"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "can", "could",
                          "would", "will", "should"})


def _counted_run(words: Sequence[str]) -> tuple[int, int]:
    """Where the words after "how many"/"how much" (and "of the") run, up to the verb: "how many
    of the GLUE tasks did it win" -> GLUE tasks. Names and frame words stay: "tasks" counts here
    even where "multi-task" names MT-DNN, and "by how many points" counts points."""
    lowered = [w.lower() for w in words]
    for i in range(len(lowered) - 1):
        if lowered[i] == "how" and lowered[i + 1] in ("many", "much"):
            start = i + 2
            while start < len(lowered) and lowered[start] in ("of", "the", "its", "their"):
                start += 1
            end = start
            while end < len(lowered) and lowered[end] not in _AUXILIARIES and lowered[end] not in LINKING_WORDS:
                end += 1
            return start, end
    return 0, 0


def counted_words(focus: Focus, as_asked: bool = False) -> list[str] | None:
    """The question's words for what a number question counts or measures ("How many GPUs" ->
    GPUs; "What value of the pretraining-mix coefficient" -> pretraining-mix coefficient), or
    ``None`` when any figure may answer (a comparison). Without such words, the question's own
    content words serve, less names, which say whose figure it is, not what it measures. Spelling
    corrected, unless ``as_asked`` (to quote the question back: "labelers", not "labeler")."""
    corrected = _WORD.findall(focus.corrected)
    start, end = _counted_run(corrected)
    asked = _WORD.findall(focus.question)
    head = (asked if as_asked and len(asked) == len(corrected) else corrected)[start:end] or list(focus.asked_for)
    if any(w.lower() in _COMPARATIVES for w in head):
        return None
    kept = [w for w in head if w.lower() not in QUANTITY_WORDS]
    return kept or [w for w in focus.focus_words if w.lower() not in QUANTITY_WORDS and w.islower()]


def counted_terms(focus: Focus) -> frozenset[str] | None:
    """Stems of :func:`counted_words`; ``None`` when any figure may answer."""
    words = counted_words(focus)
    terms = frozenset(t for w in words or () for t in stems(w))
    return terms or None


def gives_what_is_asked(text: str, focus: Focus) -> bool:
    """For a number or a date question, ``text`` states one of that kind (:func:`states_figure_for`,
    a year or month the question does not give); any sentence may answer other questions."""
    if focus.answer_type == "number":
        return states_figure_for(text, focus)
    if focus.answer_type == "date":
        return bool(dates_in(text) - dates_in(focus.question))
    return True


def states_figure_for(text: str, focus: Focus, window: int = FIGURE_WINDOW) -> bool:
    """``text`` states a new figure (one the question does not) within ``window`` words of what the
    question counts: "How many GPUs trained it?" is not answered by "the 1.3B model is preferred"."""
    if not has_new_number(text, focus.question):
        return False  # most sentences state no figure: one pass over the text, not one per word
    counted = counted_terms(focus)
    if counted is None:
        return True
    asked = numbers_in(focus.question)
    words = text.split()
    figures = [i for i, w in enumerate(words) if numbers_in(w) - asked]
    if not figures:
        return False
    near_counted = [i for i, w in enumerate(words) if counted.intersection(stems(w))]
    return any(abs(i - j) <= window for i in figures for j in near_counted)
