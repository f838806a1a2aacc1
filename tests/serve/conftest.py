"""Servers for the HTTP tests: uvicorn on a free loopback port, in a thread."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from opentransformer.serve import ServeSettings, create_app

API_KEY = "sk-test-key"
CTX = 1024


@dataclass
class LiveServer:
    base_url: str
    api_key: str | None
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels` (parsed with prometheus_client)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.base_url}/metrics", timeout=10).text
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(**options) -> LiveServer:
    settings = ServeSettings(port=_free_port(), **{"ctx": CTX, **options})
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{settings.port}", settings.api_key, server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=30)


@pytest.fixture(scope="session")
def live():
    """The main server: default model, an API key, 8 sequences at once."""
    server = start_server(api_key=API_KEY, max_sequences=8)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def client(live):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def direct_llm():
    """The same model driven directly, as the reference for greedy replies."""
    from opentransformer import load_llm

    return load_llm(n_ctx=CTX)
