"""Generated prose against a real model server (SmolLM2-135M on llama-cpp-python, started here).

A tiny local stub server adds the cases a real server will not produce on demand (a stall, a
malformed or empty stream); every other case runs against the real one.
"""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator

import pytest

from rag.check import SupportScorer, check_reply
from rag.generate import NOT_ATTEMPTED, ProseRun
from rag.llm import GenerationError, LLMConfig, Message, complete_chat, stream_chat
from rag.llm_server import MODEL_ALIAS, free_port
from rag.prompt import numbered_passages
from rag.settings import Settings
from rag.types import Answer, Chunk, Citation, Document, Hit

pytestmark = pytest.mark.slow

THRESHOLD = Settings().sentence_support_min
CATS = Document(id="cats", title="Notes on Cats",
                text="Cats sleep for most of the day. A house cat sleeps about fifteen hours a day. "
                     "Cats hunt small birds and mice at dawn.")
ROCKETS = Document(id="rockets", title="Rocket Basics",
                   text="Multi-stage rockets drop empty tanks to save mass. The first stage is the heaviest.")


def _cited(document: Document, n: int, quote: str) -> tuple[Citation, Hit]:
    start = document.text.index(quote)
    chunk = Chunk(f"{document.id}-0", document.id, document.text, 0, len(document.text))
    return Citation(n, document, quote, start, start + len(quote)), Hit(chunk, 1.0 / n, n)


def _answer(question: str) -> Answer:
    first, hit1 = _cited(CATS, 1, "A house cat sleeps about fifteen hours a day.")
    second, hit2 = _cited(ROCKETS, 2, "Multi-stage rockets drop empty tanks to save mass.")
    return Answer(question, "quotes", (first, second), False, hits=(hit1, hit2), support=0.8)


@pytest.fixture(scope="module")
def scorer() -> SupportScorer:
    from rag.embedding import load_embedder

    return SupportScorer(load_embedder(Settings()))


@pytest.fixture
def config(llm_server) -> LLMConfig:
    return LLMConfig(url=llm_server.url, model=MODEL_ALIAS, read_timeout=120, total_timeout=300, max_tokens=96)


def test_tokens_stream_in_pieces_and_the_reply_is_checked(config, scorer):
    run = ProseRun(_answer("How long does a house cat sleep?"), config, scorer, THRESHOLD)
    pieces = list(run.tokens())
    prose = run.result()
    assert len(pieces) > 3  # streamed token by token, not in one block
    assert prose.reply == "".join(pieces) and prose.notice is None
    assert prose.first_token_s is not None and prose.total_s >= prose.first_token_s
    assert prose.sentences, "a reply of text has at least one sentence"
    for sentence in prose.sentences:  # every verdict follows the rules, whatever the model wrote
        if sentence.supported:
            assert set(sentence.markers) <= {1, 2} and sentence.support >= THRESHOLD
        elif not sentence.markers:
            assert sentence.reason in ("it cites no source", "the model declined to answer")
    kept = [s.text for s in prose.sentences if s.supported]
    assert prose.text == (" ".join(kept) if kept else None)
    assert (prose.withheld_because is None) == bool(kept)


def _echo(config: LLMConfig, text: str) -> str:
    """Have the real model copy a text, so the checker sees a real streamed reply of known content.

    A 135M model copies words faithfully but sometimes drops the ``[n]``; one worked example helps.
    """
    messages = [Message("system", "You copy the user's text exactly, keeping every [n]."),
                Message("user", "Copy: Dogs bark at night [1]."), Message("assistant", "Dogs bark at night [1]."),
                Message("user", f"Copy: {text}")]
    return complete_chat(config, messages)


def _verdict(checked, word: str):
    [sentence] = [s for s in checked.sentences if word in s.text]
    return sentence


def test_an_unsupported_sentence_from_the_model_is_dropped(config, scorer):
    reply = _echo(config, "A house cat sleeps about fifteen hours a day [1]. Rockets are powered by cheese [2].")
    checked = check_reply(reply, numbered_passages(_answer("q")), scorer, THRESHOLD)
    cheese = _verdict(checked, "cheese")
    assert not cheese.supported and "cheese" not in (checked.prose or "")
    if cheese.markers == (2,):  # the model kept the marker: dropped for what it says, not for its form
        assert cheese.reason.startswith("not supported by the sources: [2] do not say this")
        assert cheese.support < THRESHOLD
    else:
        assert cheese.reason == "it cites no source"
    cat = _verdict(checked, "house cat")
    assert cat.supported == (cat.markers == (1,))


def test_marker_to_an_unshown_passage_from_the_model_is_dropped(config, scorer):
    reply = _echo(config, "A house cat sleeps about fifteen hours a day [7].")
    sentence = _verdict(check_reply(reply, numbered_passages(_answer("q")), scorer, THRESHOLD), "house cat")
    assert not sentence.supported
    assert sentence.reason == ("it cites [7], but the model was shown only [1], [2]" if 7 in sentence.markers
                               else "it cites no source")


def test_the_models_refusal_becomes_a_withheld_prose(config, scorer):
    reply = _echo(config, "I cannot answer this from the sources.")
    checked = check_reply(reply, numbered_passages(_answer("q")), scorer, THRESHOLD)
    assert checked.prose is None
    assert checked.withheld_because == "The model said the quoted passages do not answer the question."


def test_a_timeout_leaves_the_quotes_with_a_notice(config, scorer):
    impatient = dataclasses.replace(config, read_timeout=0.001)
    prose = ProseRun(_answer("How long does a house cat sleep?"), impatient, scorer, THRESHOLD).result()
    assert prose.text is None and prose.sentences == ()
    assert prose.notice == (f"Prose unavailable: the language model at {config.url} did not answer within "
                            "0.001 s. Showing the quoted answer.")


def test_an_http_error_leaves_the_quotes_with_a_notice(config, scorer):
    wrong_path = dataclasses.replace(config, url=config.url.removesuffix("/v1") + "/no-such-api")
    prose = ProseRun(_answer("q"), wrong_path, scorer, THRESHOLD).result()
    assert prose.text is None
    assert prose.notice.startswith("Prose unavailable: the language model server answered HTTP 404: ")


def test_a_server_that_is_down_leaves_the_quotes_with_a_notice(scorer):
    down = LLMConfig(url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    prose = ProseRun(_answer("q"), down, scorer, THRESHOLD).result()
    assert prose.text is None
    assert prose.notice == (f"Prose unavailable: cannot reach the language model at {down.url} "
                            "(is the server running?). Showing the quoted answer.")


def test_an_abstained_answer_is_not_sent_to_the_model(scorer):
    down = LLMConfig(url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    abstained = Answer("q", "The sources do not answer this question.", (), True)
    assert ProseRun(abstained, down, scorer, THRESHOLD).result() == NOT_ATTEMPTED


# ---------------------------------------------------------------- cases only a stub produces


class _Stub(http.server.BaseHTTPRequestHandler):
    body: bytes = b""
    content_type = "text/event-stream"
    stall = threading.Event()

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", self.content_type)
        self.end_headers()
        self.wfile.write(self.body)
        self.wfile.flush()
        if self.body.startswith(b": stall"):
            self.stall.wait(30)  # released when the test ends

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[type[_Stub]]:
    handler = type("Handler", (_Stub,), {"stall": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield handler
    finally:
        handler.stall.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"data: {not json\n\n", "text/event-stream", "the language model sent a malformed stream event (not JSON)"),
    (b'data: {"id": 1}\n\n', "text/event-stream",
     "the language model sent a malformed stream event (no choices[0].delta)"),
    (b"data: [DONE]\n\n", "text/event-stream", "the language model sent an empty reply"),
    (b'{"choices": []}', "application/json", "the language model sent an empty reply"),
    (b"<html>", "application/json", "the language model sent a malformed reply (not JSON)"),
])
def test_malformed_or_empty_replies_raise_one_line_errors(stub, body, content_type, message):
    stub.body, stub.content_type = body, content_type
    with pytest.raises(GenerationError) as caught:
        list(stream_chat(LLMConfig(url=stub.url, model="m"), [Message("user", "hi")]))
    assert str(caught.value) == message


def test_a_stalled_stream_times_out_and_the_run_keeps_what_came(stub, scorer):
    stub.body = (b": stall\n\n" b'data: {"choices": [{"delta": {"content": "A house cat"}}]}\n\n')
    stalled = LLMConfig(url=stub.url, model="m", read_timeout=0.5, total_timeout=5)
    run = ProseRun(_answer("q"), stalled, scorer, THRESHOLD)
    assert list(run.tokens()) == ["A house cat"]
    prose = run.result()
    assert (prose.text, prose.reply) == (None, "A house cat")
    assert prose.notice == (f"Prose unavailable: the language model at {stub.url} did not answer within 0.5 s. "
                            "Showing the quoted answer.")
