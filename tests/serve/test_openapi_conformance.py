"""Property-based requests from our own OpenAPI document (schemathesis): no
request, valid or not, gets a 5xx, and every response matches what the
document promises — status code, content type, headers and body schema."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,  # noqa: E402
                                               response_schema_conformance, status_code_conformance)

from opentransformer.serve import ServeSettings, create_app  # noqa: E402

from .conftest import API_KEY, start_server, stop_server  # noqa: E402

# A small context bounds every generated reply, so a valid request that asks
# for "as many tokens as fit" finishes in seconds.
CONTEXT = 64
EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server():
    live = start_server(api_key=API_KEY, ctx=CONTEXT, max_sequences=4)
    yield live
    stop_server(live)


# The document is built from the routes without loading a model, so the
# operations are known when tests are collected; the server serves this same document.
schema = schemathesis.openapi.from_dict(create_app(ServeSettings()).openapi())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_responses_conform_to_the_document(case, fuzz_server):
    # Schema-valid bodies name the served model, or almost all of them would
    # stop at the 404 for an unknown model and never reach the engine.
    if case.meta.generation.mode.is_positive and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = "default"
    case.call_and_validate(base_url=fuzz_server.base_url, headers=fuzz_server.headers, checks=CHECKS, timeout=120)
