"""Settings: defaults in one place, ``RAG_*`` environment read only when asked, bad values and
unknown names refused with the value shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag.errors import SettingsError
from rag.settings import DEFAULT_MODEL, REPO_ROOT, Settings


def test_defaults():
    settings = Settings()
    assert settings.corpus_dir == REPO_ROOT / "corpus"
    assert settings.index_dir == REPO_ROOT / "index"
    assert (settings.model_name, settings.model_path) == (DEFAULT_MODEL, "")
    assert DEFAULT_MODEL == "sentence-transformers/all-MiniLM-L6-v2"
    assert (settings.mode, settings.k, settings.candidates, settings.dense_weight) == ("hybrid", 5, 50, 0.5)
    assert (settings.chunk_size, settings.chunk_overlap) == (600, 120)
    assert (settings.max_question_chars, settings.max_upload_bytes) == (2000, 20 * 1024 * 1024)


def test_every_field_is_described():
    for field in dataclasses.fields(Settings):
        assert field.metadata.get("doc"), field.name


def test_from_env_reads_rag_variables_and_coerces_them():
    environ = {"RAG_INDEX_DIR": "/tmp/somewhere", "RAG_K": "7", "RAG_DENSE_WEIGHT": "0.25",
               "RAG_MODE": "bm25", "RAG_MODEL_NAME": "fake", "HOME": "/root", "RAG_NOT_A_SETTING": "x"}
    settings = Settings.from_env(environ)
    assert settings.index_dir == Path("/tmp/somewhere")
    assert (settings.k, settings.dense_weight, settings.mode, settings.model_name) == (
        7, 0.25, "bm25", "fake")
    assert isinstance(settings.k, int) and isinstance(settings.dense_weight, float)


def test_from_env_overrides_win_and_none_overrides_are_ignored():
    settings = Settings.from_env({"RAG_K": "7", "RAG_CORPUS_DIR": "/env/corpus"}, k=3, corpus_dir=None)
    assert settings.k == 3
    assert settings.corpus_dir == Path("/env/corpus")


def test_from_env_does_not_read_the_process_environment_when_given_a_mapping(monkeypatch):
    monkeypatch.setenv("RAG_K", "9")
    assert Settings.from_env({}).k == 5
    assert Settings.from_env().k == 9


def test_unknown_names_are_refused_listing_the_known_ones():
    with pytest.raises(SettingsError, match=r"^unknown setting\(s\) 'colour', 'top_k'; known: corpus_dir, "):
        Settings.from_mapping({"top_k": 3, "colour": "red", "k": 2})


@pytest.mark.parametrize(("values", "message"), [
    ({"k": "many"}, r"^setting k='many' is not a valid int$"),
    ({"dense_weight": "half"}, r"^setting dense_weight='half' is not a valid float$"),
    ({"mode": "fuzzy"}, r"^mode 'fuzzy' is not one of dense, bm25, hybrid$"),
    ({"dense_weight": 1.5}, r"^dense_weight 1\.5 must lie in \[0, 1\]$"),
    ({"dense_weight": -0.1}, r"^dense_weight -0\.1 must lie in \[0, 1\]$"),
    ({"chunk_size": 100, "chunk_overlap": 100},
     r"^chunk_overlap 100 must be at least 0 and smaller than chunk_size 100$"),
    ({"chunk_overlap": -5}, r"^chunk_overlap -5 must be at least 0 and smaller than chunk_size 600$"),
    ({"k": 0}, r"^k must be a positive integer, got 0$"),
    ({"batch_size": -1}, r"^batch_size must be a positive integer, got -1$"),
    ({"candidates": 0}, r"^candidates must be a positive integer, got 0$"),
    ({"max_question_chars": 0}, r"^max_question_chars must be a positive integer, got 0$"),
    ({"max_upload_bytes": 0}, r"^max_upload_bytes must be a positive integer, got 0$"),
    ({"llm_url": "localhost:11434/v1"}, r"^llm_url 'localhost:11434/v1' must start with http:// or https:// \(an "
                                        r"OpenAI-compatible base URL, e\.g\. http://127\.0\.0\.1:11434/v1\)$"),
    ({"followup_sources": "all"}, r"^followup_sources 'all' is not one of previous, named, none$"),
])
def test_bad_values_are_refused_showing_the_value(values, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping(values)


def test_settings_are_frozen_and_replace_validates():
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.k = 3  # type: ignore[misc]
    assert settings.replace(k=3).k == 3
    with pytest.raises(SettingsError, match=r"^k must be a positive integer, got 0$"):
        settings.replace(k=0)
