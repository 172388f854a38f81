"""What the corpus itself says about names: acronyms and their expansions, what each source is
called, and which words it uses. Mined once at build time and stored beside the index.

- Acronyms: defined ones ("Multi-Task Deep Neural Network (MT-DNN)", Schwartz & Hearst 2003,
  "A Simple Algorithm for Identifying Abbreviation Definitions in Biomedical Text") and an index of
  word runs by their initials, so an acronym the corpus never writes ("RLHF") still finds the words
  it abbreviates ("reinforcement learning from human feedback").
- Aliases: a source's title, its head ("A General Language Assistant"), its first author's
  surname, its id's words, names it coins ("We call the resulting models InstructGPT"), acronyms
  it defines, and any ``aliases:`` its metadata lists.
- Vocabulary: the corpus's words, to correct a misspelled question word to the nearest one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rag.types import Document

LEXICON_FILE = "lexicon.json"
# Words an acronym may skip ("reinforcement learning from human feedback" is RLHF).
LINKING_WORDS = frozenset({"of", "from", "for", "and", "the", "to", "in", "on", "with", "a", "an", "as", "by"})
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’]*(?:-[A-Za-z0-9]+)*")
_DEFINED = re.compile(r"\(([A-Z][A-Za-z0-9-]{1,9}?)s?\)")
_COINED = re.compile(r"\b(?:we|they)\s+(?:call|name|term|dub)\s+(?:the\s+resulting\s+\w+\s+|it\s+|this\s+)?"
                     r"([A-Z][\w-]+)", re.I)
_TITLE_HEAD = re.compile(r"\s+(?:for|as|with|:|–|—|in)\s+", re.I)
MAX_INITIALISMS = 200_000  # bounds the table on large corpora; the project corpus needs ~5k
MAX_RUNS_PER_KEY = 8
MAX_VOCABULARY = 100_000


def without_possessive(token: str) -> str:
    """``Anthropic's`` -> ``Anthropic``: the possessive names the same thing."""
    return re.sub(r"['’]s$", "", token)


def acronym_key(token: str) -> str:
    """``MT-DNN`` -> ``mtdnn``, ``LLMs`` -> ``llm``: how acronyms and one-word names are compared."""
    token = without_possessive(token)
    if len(token) > 2 and token.endswith("s") and token[-2].isupper():
        token = token[:-1]
    return re.sub(r"[^a-z0-9]", "", token.lower())


def _parts(words: Sequence[str]) -> list[str]:
    return [p for w in words for p in w.split("-") if p]


def initials(words: Sequence[str]) -> str:
    """Initials of the content words ("Multi-Task Deep Neural Network" -> "mtdnn")."""
    return "".join(p[0].lower() for p in _parts(words) if p.lower() not in LINKING_WORDS)


def _expansion_before(words: Sequence[str], key: str) -> str | None:
    """The shortest run of words ending before a defined acronym whose initials spell it."""
    for n in range(1, min(len(words), len(key) + 3) + 1):
        run = words[-n:]
        if run[0].lower() in LINKING_WORDS:
            continue
        if initials(run) == key:
            return " ".join(run)
    return None


@dataclass(frozen=True)
class Lexicon:
    acronyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key -> expansions
    spellings: Mapping[str, str] = field(default_factory=dict)  # key -> the acronym as the corpus writes it
    initialisms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # initials -> word runs
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # source id -> names
    strong: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # source id -> one-word names
    vocabulary: Mapping[str, int] = field(default_factory=dict)  # lowercase word -> count

    def to_json(self) -> str:
        return json.dumps({name: {k: list(v) if isinstance(v, tuple) else v for k, v in getattr(self, name).items()}
                           for name in ("acronyms", "spellings", "initialisms", "aliases", "strong", "vocabulary")},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lexicon:
        body = json.loads(text)
        tuples = {name: {k: tuple(v) for k, v in body[name].items()}
                  for name in ("acronyms", "initialisms", "aliases", "strong")}
        return cls(**tuples, spellings=dict(body["spellings"]), vocabulary=dict(body["vocabulary"]))


def defined_acronyms(text: str, spellings: dict[str, str] | None = None) -> dict[str, set[str]]:
    """``{key: expansions}`` of the acronyms ``text`` defines in parentheses after their words."""
    found: dict[str, set[str]] = {}
    for match in _DEFINED.finditer(text):
        key = acronym_key(match.group(1))
        before = _WORD.findall(text[max(0, match.start() - 200):match.start()])
        expansion = _expansion_before(before, key)
        if expansion:
            found.setdefault(key, set()).add(expansion)
            if spellings is not None:
                spellings.setdefault(key, match.group(1))
    return found


def _initialism_runs(text: str, table: dict[str, set[str]]) -> None:
    words = _WORD.findall(text)
    for i, first in enumerate(words):
        if first.lower() in LINKING_WORDS or not first[0].isalpha():
            continue
        for n in range(2, 7):
            run = words[i:i + n]
            if len(run) < n or run[-1].lower() in LINKING_WORDS or not all(w[0].isalpha() for w in run):
                continue
            key = initials(run)
            if not 2 <= len(key) <= 6 or len(table.get(key, ())) > MAX_RUNS_PER_KEY:
                continue  # a key with this many runs is too ambiguous to expand anyway
            if key in table or len(table) < MAX_INITIALISMS:
                table.setdefault(key, set()).add(" ".join(w.lower() for w in run))


def source_aliases(document: Document) -> tuple[list[str], list[str]]:
    """``(phrases, one-word names)`` a question may use to name ``document``."""
    phrases = [_TITLE_HEAD.split(document.title)[0]]  # the head: a title's tail ("in Machine Learning") is generic
    id_words = [p for p in re.split(r"[-_]", document.id) if not re.fullmatch(r"[a-z]*\d+", p)]
    phrases.append(" ".join(id_words))
    strong = [m.group(1) for m in _COINED.finditer(document.text)]
    first = document.authors[0] if document.authors else ""
    if re.fullmatch(r"[A-Z][\w'’-]+(?: [A-Z][\w.'’-]*){0,3}", first):  # a surname, or an organisation's name
        strong.append(first.split()[-1])
    if len(id_words) == 1:  # "liu2019-mtdnn": the id's one word is the work's short name
        strong.append(id_words[0])
    author_year = re.fullmatch(r"([a-z]+)\d{4}", document.id.split("-")[0])
    if author_year:  # ids like "ouyang2022-instructgpt"
        strong.append(author_year.group(1))
    for key, value in document.extra:
        if key == "aliases":  # the curator's own names for the source, one-word ones as strong names
            listed = [a.strip() for a in value.split(";") if a.strip()]
            phrases += [a for a in listed if " " in a]
            strong += [a for a in listed if " " not in a]
    return [p for p in dict.fromkeys(phrases) if p], [s for s in dict.fromkeys(strong) if s and len(s) > 2]


def mine_lexicon(documents: Iterable[Document]) -> Lexicon:
    documents = list(documents)
    acronyms: dict[str, set[str]] = {}
    spellings: dict[str, str] = {}
    initialisms: dict[str, set[str]] = {}
    vocabulary: Counter[str] = Counter()
    for document in documents:
        for key, runs in defined_acronyms(document.text, spellings).items():
            acronyms.setdefault(key, set()).update(runs)
        _initialism_runs(document.text, initialisms)
        vocabulary.update(w.lower() for w in _WORD.findall(document.text) if w.isalpha())
    aliases, strong = {}, {}
    for document in documents:
        aliases[document.id], strong[document.id] = (tuple(x) for x in source_aliases(document))
    return Lexicon(acronyms={k: tuple(sorted(v)) for k, v in acronyms.items()}, spellings=spellings,
                   initialisms={k: tuple(sorted(v)) for k, v in initialisms.items()},
                   aliases=aliases, strong=strong,
                   vocabulary=dict(vocabulary.most_common(MAX_VOCABULARY)))
