"""Load on ``rag serve``: bounded ``POST /v1/ask`` requests at 1, 4 and 16 concurrent clients, and at
16 clients while sources are added and removed (each a rebuild swapped in under the server).

    python bench/serve.py                    # 300 requests per level (~10 minutes on 2 cores)
    python bench/serve.py --requests 500

The reference is the single-process warm ``Assistant.ask`` rate over the same questions (no HTTP,
no threads), measured in this run before and after the server levels: the server on the same 2
cores cannot beat it, and the question is how much the HTTP layer and the thread pool lose. The
server runs as a real ``rag serve`` process on 127.0.0.1 over a temporary copy of the project corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from corpora import PROJECT_CORPUS, latency_questions
from harness import CACHE_DIR, offline_env, summary_ms, table, write_result

TOKEN = "bench-token"
LEVELS = (1, 4, 16)
REBUILD_CLIENTS = 16
NOTE = b"Bench Note\n\nA short note added and removed again to make the server rebuild its index.\n"


def open_reference(corpus: Path, index: Path):
    """The application layer in this process, warm: the reference the server is compared with."""
    from rag.assistant import open_assistant
    from rag.settings import Settings

    assistant, _ = open_assistant(Settings(corpus_dir=corpus, index_dir=index))
    assistant.warm_up()
    return assistant


def warm_ask_rate(assistant, questions: list[str], label: str) -> dict:
    """Asks per second of one warm process calling the application layer directly, one at a time."""
    for question in questions[:10]:
        assistant.ask(question)
    times = []
    began = time.perf_counter()
    for question in questions:
        start = time.perf_counter()
        assistant.ask(question)
        times.append(time.perf_counter() - start)
    seconds = time.perf_counter() - began
    return {"label": label, "clients": 1, "requests": len(questions), "errors": 0,
            **summary_ms(times), "seconds": round(seconds, 2), "per_s": round(len(questions) / seconds, 2)}


def start_server(corpus: Path, index: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index), "RAG_API_TOKEN": TOKEN}
    rag = str(Path(sys.executable).with_name("rag"))
    server = subprocess.Popen([rag, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"rag serve exited: {server.stderr.read() if server.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("rag serve did not answer /healthz within 300 s")


async def load(url: str, questions: list[str], clients: int, rebuild: bool) -> dict:
    """Send every question once with ``clients`` in flight; optionally rebuild all along."""
    pending = list(reversed(questions))
    times: list[float] = []
    errors: dict[str, int] = {}
    generations: set[str] = set()
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients + 2)) as http:
        async def client() -> None:
            while pending:
                question = pending.pop()
                start = time.perf_counter()
                try:
                    response = await http.post("/v1/ask", json={"question": question})
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = exc.__class__.__name__
                if status == "200":
                    times.append(time.perf_counter() - start)
                else:
                    errors[status] = errors.get(status, 0) + 1

        async def rebuilder() -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            while not done.is_set():
                added = await http.post("/v1/sources", headers=headers,
                                        files={"file": ("bench-note.txt", NOTE, "text/plain")})
                removed = await http.delete("/v1/sources/bench-note", headers=headers)
                for response in (added, removed):
                    if response.status_code not in (200, 201):
                        raise SystemExit(f"rebuild failed: {response.status_code} {response.text}")
                    generations.add(response.json()["generation"])

        began = time.perf_counter()
        rebuilding = asyncio.create_task(rebuilder()) if rebuild else None
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - began
        done.set()
        if rebuilding:
            await rebuilding
    label = f"HTTP ask, {clients} clients" + (", rebuilding" if rebuild else "")
    row = {"label": label, "clients": clients, "requests": len(questions), "errors": sum(errors.values()),
           **summary_ms(times or [0.0]), "seconds": round(seconds, 2), "per_s": round(len(times) / seconds, 2)}
    if errors:
        row["error_statuses"] = errors
    if rebuild:
        row["generations_swapped"] = len(generations)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per level (default 300)")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    offline_env()
    from rag.settings import Settings

    questions = latency_questions(args.requests)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        shutil.copytree(PROJECT_CORPUS, corpus)
        reference = open_reference(corpus, index)
        server = start_server(corpus, index, args.port)
        try:
            url = f"http://127.0.0.1:{args.port}"
            # The reference runs before and after the server levels (the server idle meanwhile), so a
            # neighbour's load that comes or goes during the run shows up on both sides.
            rows = [warm_ask_rate(reference, questions, "in-process ask, before")]
            for clients, rebuild in [*((c, False) for c in LEVELS), (REBUILD_CLIENTS, True)]:
                rows.append(asyncio.run(load(url, questions, clients, rebuild)))
                print(f"{rows[-1]['label']}: {rows[-1]['per_s']} req/s, {rows[-1]['errors']} errors", flush=True)
            rows.append(warm_ask_rate(reference, questions, "in-process ask, after"))
        finally:
            server.terminate()
            server.wait(timeout=60)
    reference_rate = (rows[0]["per_s"] + rows[-1]["per_s"]) / 2
    for row in rows:
        row["vs_reference"] = round(row["per_s"] / reference_rate, 3)
    print(table("POST /v1/ask on 127.0.0.1 (project corpus, real model)", rows,
                ["label", "requests", "errors", "p50_ms", "p95_ms", "per_s", "vs_reference"]))
    path = write_result("serve", {"requests_per_level": args.requests, "reference_per_s": round(reference_rate, 2),
                                  "server_threads": Settings().server_threads, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
