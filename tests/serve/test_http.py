"""Errors, limits, metrics and the other routes, over plain HTTP."""
from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from opentransformer.serve import ServeSettings, create_app

from .conftest import CTX, start_server, stop_server

CHAT = {"model": "default", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4}


def post(live, path: str, body=None, **options) -> httpx.Response:
    headers = {**live.headers, **options.pop("headers", {})}
    return httpx.post(f"{live.base_url}{path}", json=body, headers=headers, timeout=60, **options)


def assert_error(r: httpx.Response, status: int, param: str | None = None) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_api_key_required(live):
    assert_error(httpx.post(f"{live.base_url}/v1/chat/completions", json=CHAT), 401)
    error = assert_error(post(live, "/v1/chat/completions", CHAT, headers={"Authorization": "Bearer wrong"}), 401)
    assert error["type"] == "authentication_error"
    assert post(live, "/v1/chat/completions", CHAT).status_code == 200


@pytest.mark.parametrize("change, param", [
    ({"temperature": 5}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"repeat_penalty": 1e-53}, "repeat_penalty"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"top_logprobs": 50}, "top_logprobs"),
    ({"presence_penalty": 3}, "presence_penalty"),
    ({"stop": ["a"] * 17}, "stop"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, None),
    ({"n": 2}, "n"),
])
def test_bad_fields_are_400(live, change, param):
    assert_error(post(live, "/v1/chat/completions", {**CHAT, **change}), 400, param)


def test_malformed_json_is_400(live):
    r = httpx.post(f"{live.base_url}/v1/chat/completions", content=b"{not json",
                   headers={**live.headers, "Content-Type": "application/json"})
    assert_error(r, 400)


def test_unknown_model_is_404(live):
    error = assert_error(post(live, "/v1/chat/completions", {**CHAT, "model": "gpt-9"}), 404, "model")
    assert error["code"] == "model_not_found"


def test_prompt_plus_max_tokens_over_context_is_400(live):
    error = assert_error(post(live, "/v1/completions", {"model": "default", "prompt": "Hi there",
                                                        "max_tokens": CTX}), 400)
    assert error["code"] == "context_length_exceeded"
    assert str(CTX) in error["message"] and "max_tokens" in error["message"]


def test_body_over_limit_is_413(live):
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    assert_error(post(live, "/v1/chat/completions", big), 413)


def test_health_and_models(live):
    assert httpx.get(f"{live.base_url}/health").json() == {"status": "ok"}
    r = httpx.get(f"{live.base_url}/v1/models", headers=live.headers)
    assert r.json()["data"][0]["id"] == "default"


def test_health_is_503_before_the_model_loads():
    client = TestClient(create_app(ServeSettings()))  # no `with`: the lifespan (model load) has not run
    r = client.get("/health")
    assert r.status_code == 503 and r.json() == {"status": "loading"}
    assert_error(client.post("/v1/chat/completions", json=CHAT), 503)


def test_tokenize_round_trip(live):
    tokens = post(live, "/tokenize", {"content": "Hello, world!"}).json()["tokens"]
    assert post(live, "/detokenize", {"tokens": tokens}).json()["content"] == "Hello, world!"
    assert_error(post(live, "/detokenize", {"tokens": [10**6]}), 400, "tokens")


def test_metrics_parse_and_move(live):
    before = live.metric("opentransformer_generation_tokens_total")
    route = {"route": "/v1/completions", "status": "200"}
    requests_before = live.metric("opentransformer_requests_total", **route)
    post(live, "/v1/completions", {"model": "default", "prompt": "One, two,", "max_tokens": 5, "temperature": 0})
    assert live.metric("opentransformer_generation_tokens_total") >= before + 1
    assert live.metric("opentransformer_prompt_tokens_total") > 0
    assert live.metric("opentransformer_time_to_first_token_seconds_count") >= 1
    assert live.metric("opentransformer_running_sequences") == 0
    assert live.metric("opentransformer_requests_total", **route) == requests_before + 1


def test_chat_page_and_openapi(live):
    page = httpx.get(f"{live.base_url}/")
    assert page.status_code == 200 and "/v1/chat/completions" in page.text
    doc = httpx.get(f"{live.base_url}/openapi.json").json()
    assert "/v1/chat/completions" in doc["paths"]


def test_disconnect_frees_the_sequence_within_a_step(live):
    body = {**CHAT, "max_tokens": 400, "stream": True, "temperature": 0.8, "seed": 1}
    with httpx.stream("POST", f"{live.base_url}/v1/chat/completions", json=body, headers=live.headers,
                      timeout=60) as r:
        lines = r.iter_lines()
        while not next(lines).startswith("data: {"):
            pass
        next(lines)
        assert live.metric("opentransformer_running_sequences") == 1
    deadline = time.monotonic() + 5
    while live.metric("opentransformer_running_sequences") != 0:
        assert time.monotonic() < deadline, "the sequence kept running after the client left"
        time.sleep(0.02)


def test_full_queue_is_429_with_retry_after():
    live = start_server(max_sequences=1, max_queue=1)
    try:
        # counting keeps the first request going, and it holds the only sequence
        counting = {"model": "default", "prompt": "1, 2, 3, 4, 5,", "max_tokens": 300, "temperature": 0,
                    "stream": True}
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            with http.stream("POST", "/v1/completions", json=counting) as running:
                lines = running.iter_lines()
                while not next(lines).startswith("data: {"):
                    pass
                # a streamed chat answers its headers at once, while it waits for a sequence
                with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as queued:
                    deadline = time.monotonic() + 5
                    while live.metric("opentransformer_queue_depth") < 1:
                        assert time.monotonic() < deadline
                        time.sleep(0.02)
                    r = http.post("/v1/chat/completions", json=CHAT)
                    assert_error(r, 429)
                    assert r.headers["Retry-After"] == "1"
                    assert queued.status_code == 200
    finally:
        stop_server(live)
