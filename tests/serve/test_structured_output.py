"""json_schema output on varied prompts: every reply parses and validates."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

jsonschema = pytest.importorskip("jsonschema")

NAME = {"type": "string", "minLength": 1, "maxLength": 24}
SCHEMAS = [
    {"type": "object", "properties": {"name": NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {"colour": {"enum": ["red", "green", "blue"]}},
     "required": ["colour"], "additionalProperties": False},
    {"type": "object", "properties": {"items": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 3}},
     "required": ["items"], "additionalProperties": False},
    {"type": "object", "properties": {"answer": {"type": "boolean"}, "reason": NAME},
     "required": ["answer", "reason"], "additionalProperties": False},
    {"type": "object", "properties": {"city": NAME, "population": {"type": "integer", "minimum": 0,
                                                                    "maximum": 100000000}},
     "required": ["city", "population"], "additionalProperties": False},
]
PROMPTS = ["Tell me about a person.", "Pick a colour.", "List some fruit.", "Is water wet?", "Name a big city.",
           "Invent a character for a story.", "What colour is the sea?", "What do you pack for a trip?",
           "Is the earth flat?", "Where would you like to live?", "Describe your best friend.",
           "Choose a favourite colour.", "Name some animals.", "Can fish fly?", "Which city has a tower?",
           "Who wrote a famous book?", "What colour is grass?", "What is in your fridge?", "Is fire cold?",
           "Tell me about Paris."]


def test_json_schema_output_parses_and_validates(client):
    def run(i: int):
        schema = SCHEMAS[i % len(SCHEMAS)]
        reply = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": PROMPTS[i] + " Answer in JSON."}],
            max_tokens=120, temperature=0.8, seed=i,
            response_format={"type": "json_schema", "json_schema": {"name": f"s{i}", "schema": schema}})
        return schema, reply.choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(len(PROMPTS))))
    for schema, text in results:
        jsonschema.validate(json.loads(text), schema)


def test_unenforceable_schema_is_refused(live):
    import httpx

    r = httpx.post(f"{live.base_url}/v1/chat/completions", headers=live.headers, timeout=30, json={
        "model": "default", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "response_format"
