"""The official openai client, unmodified, against a live server."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np


from .conftest import CTX

QUESTIONS = ["What is the capital of France?", "Name three colours.", "Write a haiku about rain.",
             "How many legs does a spider have?", "What is 12 times 3?", "Say hello in Spanish.",
             "Why is the sky blue?", "Give me a word that rhymes with cat."]


def ask(client, question: str, **options):
    return client.chat.completions.create(model="default", messages=[{"role": "user", "content": question}],
                                          **options)


def test_models(client):
    assert [m.id for m in client.models.list().data] == ["default"]


def direct_greedy(question: str, max_tokens: int) -> str:
    """llm.chat on a fresh model: its prompt is computed whole, not from another prompt's cached prefix.
    Prefix reuse changes how many rows each forward runs, and the kernels' numerics depend on that."""
    from opentransformer import load_llm

    return load_llm(n_ctx=CTX).chat([{"role": "user", "content": question}], temperature=0, max_tokens=max_tokens)


def test_chat_greedy_equals_direct_generation(client):
    reply = ask(client, QUESTIONS[0], temperature=0, max_tokens=40, extra_body={"cache_prompt": False})
    want = direct_greedy(QUESTIONS[0], 40)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == want
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_eight_concurrent_greedy_streams_do_not_mix(client):
    def run(question):
        stream = ask(client, question, temperature=0, max_tokens=32, stream=True, extra_body={"cache_prompt": False})
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        got = list(pool.map(run, QUESTIONS))
    want = [direct_greedy(q, 32) for q in QUESTIONS]
    assert got == want


def test_stream_equals_non_stream_and_reports_usage(client):
    options = dict(temperature=0.9, seed=7, max_tokens=24)
    whole = ask(client, QUESTIONS[2], **options)
    chunks = list(ask(client, QUESTIONS[2], stream=True, stream_options={"include_usage": True}, **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_seed_makes_sampling_repeatable(client):
    a, b = (ask(client, QUESTIONS[6], temperature=1.0, top_p=0.95, seed=1234, max_tokens=30) for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content


def test_max_tokens_gives_length(client):
    reply = ask(client, QUESTIONS[6], temperature=0, max_completion_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 3


def _spanning_stop(client, direct_llm, prompt: str) -> tuple[str, str]:
    """A greedy completion, and a stop string in it that starts inside one token and ends in another."""
    text = client.completions.create(model="default", prompt=prompt, temperature=0, max_tokens=40).choices[0].text
    ids = direct_llm.tokenize(text, add_bos=False)
    bounds = np.cumsum([len(direct_llm.detokenize([i])) for i in ids])
    cut = next(int(b) for b in bounds if b > 12 and b + 3 < len(text))
    return text, text[cut - 2:cut + 3]


def test_completion_stop_string_across_tokens_never_leaks(client, direct_llm):
    prompt = "The history of the printing press begins"
    text, stop = _spanning_stop(client, direct_llm, prompt)
    want = text[:text.index(stop)]
    reply = client.completions.create(model="default", prompt=prompt, temperature=0, max_tokens=40, stop=[stop])
    assert reply.choices[0].text == want
    assert reply.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="default", prompt=prompt, temperature=0, max_tokens=40,
                                         stop=stop, stream=True)
    pieces = [c.choices[0].text for c in streamed if c.choices]
    assert "".join(pieces) == want
    assert not any(stop[:2] in p for p in pieces[-1:]) or want.endswith(stop[:2])


def test_logprobs(client):
    reply = ask(client, QUESTIONS[4], temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 3 and t.logprob <= 0
        assert t.top_logprobs[0].logprob >= t.top_logprobs[-1].logprob
        assert t.top_logprobs[0].token == t.token  # greedy takes the most likely token


def test_presence_and_frequency_penalties_change_the_reply(client):
    plain = ask(client, "List the numbers from 1 to 20.", temperature=0, max_tokens=30)
    penalised = ask(client, "List the numbers from 1 to 20.", temperature=0, max_tokens=30,
                    frequency_penalty=2.0, presence_penalty=2.0)
    assert plain.choices[0].message.content != penalised.choices[0].message.content


def test_json_object(client):
    reply = ask(client, 'Reply with a JSON object whose key "city" names the capital of France.',
                response_format={"type": "json_object"}, max_tokens=200, temperature=0)
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_embeddings_are_normalised(client):
    out = client.embeddings.create(model="default", input=["a cat sat on the mat", "the stock market fell"])
    vectors = np.array([d.embedding for d in out.data])
    assert vectors.shape == (2, 576)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same = client.embeddings.create(model="default", input="a cat sat on the mat").data[0].embedding
    assert np.allclose(same, vectors[0], atol=1e-5)
    assert out.usage.prompt_tokens > 0
