"""The OpenAI-compatible endpoint, called with the ``openai`` client library pointed at the local server."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from helpers import serving

from rag.assistant import open_assistant
from rag.http_api import create_app

QUESTION = "How long does a house cat sleep?"
REFERENCES = ("\n\nReferences:\n[1, 2] Ada Lovelace (2020). Notes on Cats. Journal of Feline Studies. "
              "https://example.org/cats — Sleeping")


@pytest.fixture
def client(settings, embedder) -> Iterator[openai.OpenAI]:
    assistant, _ = open_assistant(settings, embedder)
    with serving(create_app(assistant)) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)


def test_the_model_list_offers_rag(client):
    assert [model.id for model in client.models.list()] == ["rag"]


def test_a_chat_completion_answers_the_last_user_message_with_citations(client):
    reply = client.chat.completions.create(model="rag", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What do rockets burn?"},
        {"role": "assistant", "content": "Fuel and oxidizer."},
        {"role": "user", "content": QUESTION},
    ])
    assert reply.model == "rag" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.role == "assistant"
    answer = reply.model_extra["answer"]  # the full `rag ask --json` object rides along
    assert reply.choices[0].message.content == answer["answer"] + REFERENCES
    assert answer["answer"].startswith("“A house cat sleeps about fifteen hours.” [1]")
    assert (answer["question"], answer["abstained"], answer["citations"][0]["source_id"]) == (QUESTION, False, "cats")


def test_content_parts_are_read_as_the_question(client):
    reply = client.chat.completions.create(model="rag", messages=[
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]}])
    assert reply.choices[0].message.content == reply.model_extra["answer"]["answer"] + REFERENCES


def test_streaming_sends_the_same_text_in_chunks(client):
    stream = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": QUESTION}],
                                            stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    answer = chunks[-1].model_extra["answer"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer["answer"] + REFERENCES
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(chunks) > 3


def test_an_off_topic_question_abstains_without_references(client):
    reply = client.chat.completions.create(model="rag", messages=[
        {"role": "user", "content": "Who won the 2018 World Cup?"}])
    assert reply.model_extra["answer"]["abstained"] is True
    assert "References" not in reply.choices[0].message.content


def test_another_model_name_is_a_404_and_a_chat_without_a_user_message_a_422(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert missing.value.body == "model 'gpt-4o' does not exist; this server offers 'rag'"
    with pytest.raises(openai.UnprocessableEntityError) as no_question:
        client.chat.completions.create(model="rag", messages=[{"role": "system", "content": "Hello"}])
    assert no_question.value.body == "messages hold no user message to answer"
