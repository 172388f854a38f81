"""``rag serve`` as a user starts it: a real process with the real packaged model on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``rag serve --port P`` over a copy of the project corpus, without a write token."""
    root = tmp_path_factory.mktemp("serve")
    shutil.copytree(REPO / "corpus", root / "corpus")
    env = {**os.environ, "RAG_CORPUS_DIR": str(root / "corpus"), "RAG_INDEX_DIR": str(root / "index"),
           "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_API_TOKEN", None)
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a cold model load and a first build on a busy 2-core machine
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}: {process.stderr.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("rag serve did not answer /healthz")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_real_model_answers_over_http_with_a_verbatim_quote(server):
    answer = httpx.post(f"{server}/v1/ask", json={"question": "What does 3H stand for?"}, timeout=120).json()
    assert answer["abstained"] is False
    first = answer["citations"][0]
    assert (first["source_id"], first["quote"]) == ("llm-faq-page", "3H standards are Helpful, Harmless and Honest.")
    off_topic = httpx.post(f"{server}/v1/ask", json={"question": "Who won the 2018 World Cup?"}, timeout=120).json()
    assert off_topic["abstained"] is True and off_topic["citations"] == []


def test_the_served_index_is_the_project_corpus_and_writes_are_off(server):
    health = httpx.get(f"{server}/healthz").json()
    assert (health["model"], health["sources"]) == ("sentence-transformers/all-MiniLM-L6-v2", 6)
    refused = httpx.delete(f"{server}/v1/sources/llm-faq-page")
    assert refused.status_code == 403
    assert refused.json() == {"error": "writes are disabled: start the server with RAG_API_TOKEN set to enable them"}
