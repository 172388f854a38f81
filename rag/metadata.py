"""Citation metadata from places a user controls (front matter, ``sources.yaml``, PDF info, the
``rag add`` flags and the page's form), parsed with limits and checked field by field.

YAML is read without aliases: a 449-byte front matter whose ``title`` was an alias tree
("billion laughs") expanded to 5.3 GB and a 299 MB index before this rule. Every field then has
a type and a size cap, so what reaches an index is short text, a list of names, a sane year.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from rag.errors import SourceError

MAX_YAML_CHARS = 64 * 1024  # front matter or sources.yaml past this is not citation metadata
MAX_FIELD_CHARS = {"id": 200, "title": 1000, "venue": 500, "url": 2000, "kind": 40}
MAX_AUTHORS, MAX_AUTHOR_CHARS = 500, 300  # large collaborations list hundreds of names
MAX_EXTRA_FIELDS, MAX_EXTRA_CHARS = 40, 1000  # doi, arxiv, isbn...: a handful of short values
YEARS = range(1000, 2101)  # a four-digit year: 20200 or -5 is a typo, .inf is not a year


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases instead of expanding them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str, where: str, advice: str = "") -> Any:
    """Parse small YAML without alias expansion; any refusal names ``where`` and says why.

    Raises:
        SourceError: too long, uses an alias, nests too deeply, or is not YAML.
    """
    if len(text) > MAX_YAML_CHARS:
        raise SourceError(f"{where} is {len(text):,} characters; the limit is {MAX_YAML_CHARS:,}. "
                          "Keep only citation fields there")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.composer.ComposerError as exc:
        if "aliases are not allowed" in str(exc):
            raise SourceError(f"{where} uses a YAML alias (*name); write the value out instead") from None
        raise SourceError(f"{where} is not valid YAML ({exc.__class__.__name__}){advice}") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{where} is not valid YAML ({exc.__class__.__name__}){advice}") from None
    except RecursionError:
        raise SourceError(f"{where} nests too deeply to be citation metadata; flatten it") from None


@dataclass(frozen=True)
class CheckedMetadata:
    """One source's checked metadata; empty strings and ``None`` mean "not given"."""

    id: str = ""
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str = ""
    url: str = ""
    kind: str = ""
    extra: tuple[tuple[str, str], ...] = ()


def _describe(value: Any) -> str:
    return {list: "a list", dict: "a mapping", bool: "true/false"}.get(type(value), type(value).__name__)


def _text(value: Any, field: str, name: str, limit: int) -> str:
    """A text field: a string, or a plain integer written without quotes (``title: 1984``)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SourceError(f"{name}: metadata field {field!r} must be text, not {_describe(value)}")
    text = str(value).strip()
    if len(text) > limit:
        raise SourceError(f"{name}: metadata field {field!r} is {len(text):,} characters; "
                          f"the limit is {limit:,}")
    return text


# Between names: a semicolon, a line break, or a whole word "and" / "&" ("Ann Smith and Bob
# Jones"). Commas are not separators: "Smith, Ann" is one name.
_AUTHOR_SEPARATOR = re.compile(r"[;\n]|\s(?:and|&)\s")


def parse_authors(value: Any) -> tuple[str, ...]:
    """Author names from a typed string or a list: the one rule every front end and file uses."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(a.strip() for a in _AUTHOR_SEPARATOR.split(value) if a.strip())
    return tuple(str(a).strip() for a in value if str(a).strip())


def _authors(value: Any, name: str) -> tuple[str, ...]:
    """Checked names: text each, within the caps (front matter may hold anything)."""
    if value is None:
        return ()
    names = _AUTHOR_SEPARATOR.split(value) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)):
        raise SourceError(f"{name}: metadata field 'authors' must be a list of names, not {_describe(value)}")
    authors = tuple(a for a in (_text(n, "authors", name, MAX_AUTHOR_CHARS) for n in names) if a)
    if len(authors) > MAX_AUTHORS:
        raise SourceError(f"{name}: {len(authors):,} authors; the limit is {MAX_AUTHORS}")
    return authors


def _year(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    number = value.strip() if isinstance(value, str) else value
    if isinstance(number, str) and re.fullmatch(r"[0-9]{1,6}", number):
        number = int(number)
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int):
        raise SourceError(f"{name}: year {value!r} is not a year; write it as a whole number like 2020")
    if number not in YEARS:
        raise SourceError(f"{name}: year {number} is outside {YEARS.start}-{YEARS.stop - 1}; check it")
    return number


def _extra(fields: Mapping[str, Any], name: str) -> tuple[tuple[str, str], ...]:
    """Other scalar fields as text pairs (doi, arxiv...); nested values are not citation data."""
    pairs = []
    for key, value in fields.items():
        if key in CheckedMetadata.__dataclass_fields__ or value is None or value == "":
            continue
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            pairs.append((_text(str(key), "field name", name, 100), _text(str(value), str(key), name,
                                                                          MAX_EXTRA_CHARS)))
        elif key == "aliases" and isinstance(value, list) and all(isinstance(a, str) for a in value):
            # other names of the work ("the bias survey"), read by rag.reader.lexicon
            pairs.append(("aliases", _text("; ".join(value), "aliases", name, MAX_EXTRA_CHARS)))
    if len(pairs) > MAX_EXTRA_FIELDS:
        raise SourceError(f"{name}: {len(pairs)} extra metadata fields; the limit is {MAX_EXTRA_FIELDS}")
    return tuple(pairs)


def check_metadata(fields: Mapping[str, Any], name: str) -> CheckedMetadata:
    """The citation fields of ``fields`` with their types and sizes checked.

    Raises:
        SourceError: naming the file, the field and the limit.
    """
    text = {field: _text(fields.get(field), field, name, limit) for field, limit in MAX_FIELD_CHARS.items()}
    return CheckedMetadata(**text, authors=_authors(fields.get("authors"), name), year=_year(fields.get("year"), name),
                    extra=_extra(fields, name))
