"""Whether a word is ordinary English, so that the spelling corrector leaves it alone.

The corrector maps a word the corpus lacks to the nearest corpus word ("preferance" ->
"preference"). Without a dictionary it also maps real words the corpus happens to lack:
"accuracy" became "accurate", "reward" "regard", "funded" "founded", and the question then asked
about something else; worse, the word that shows the sources are silent ("accuracy" in "What
accuracy did MT-DNN get on SNLI?") vanished before the decline could see it. The word list is
pyspellchecker's English frequency list (about 160,000 words, each seen at least 50 times in
its sources, so common misspellings such as "recieve" or "seperate" are not in it), read from its
package data, never from the network.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources


@functools.cache
def _english_words() -> frozenset[str]:
    """Read once per process (0.15 s), and only when a question holds a word the corpus lacks."""
    data = resources.files("spellchecker") / "resources" / "en.json.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        return frozenset(json.load(text))


def is_english(word: str) -> bool:
    """``word`` (any case) is a common English word."""
    return word.lower() in _english_words()
