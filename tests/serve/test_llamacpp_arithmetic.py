"""The server with llama.cpp's arithmetic (`serve --arithmetic llama.cpp`) replies as llama.cpp does."""
import json
from pathlib import Path

import httpx
import pytest

from opentransformer.serve import ServeSettings

from .conftest import start_server, stop_server

GREEDY = Path(__file__).resolve().parents[1] / "fixtures" / "llamacpp" / "greedy.json"


def test_greedy_replies_equal_llamacpps():
    greedy = json.loads(GREEDY.read_text(encoding="utf-8"))
    live = start_server(arithmetic="llama.cpp", max_sequences=2)
    try:
        for chat in greedy["chats"][:3]:
            r = httpx.post(f"{live.base_url}/v1/chat/completions", timeout=120, json={
                "model": "default", "messages": chat["messages"], "max_tokens": greedy["max_tokens"], "temperature": 0})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == chat["text"], chat["messages"][-1]["content"]
    finally:
        stop_server(live)


def test_unknown_arithmetic_is_refused():
    with pytest.raises(ValueError, match="arithmetic must be"):
        ServeSettings(arithmetic="fast")
