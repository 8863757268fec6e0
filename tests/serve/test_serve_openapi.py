"""The running server against its own OpenAPI schema, property-based (hypothesis): for every
operation, request bodies are drawn from the schema the server publishes (and, half the time,
bent out of it: wrong types, extra keys, odd labels, random bytes where images go), sent over
HTTP, and every answer must be the schema's 2xx body or a 4xx JSON sentence, never a 5xx; the
server must still be serving at the end."""

import io
import json
import string
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from serve_tool import Server, b64


def tiny_png(seed: int) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return b64(buffer.getvalue())


IMAGES = [tiny_png(s) for s in range(3)]
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                        st.text(max_size=20))
ANY_JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=8)


def from_schema(schema: dict, components: dict, name: str = "") -> st.SearchStrategy:
    """A strategy for the JSON-schema subset FastAPI publishes; base64 images where images go."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].split("/")[-1]], components, name)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, components, name) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, components, k) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, components, k) for k, v in properties.items() if k not in required})
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components, name),
                        min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        if name in ("images", "image"):
            valid = st.sampled_from(IMAGES)  # most of the time, so that valid requests are drawn too
            return st.one_of(valid, valid, valid, st.text(max_size=12), st.binary(max_size=40).map(lambda b: b64(b)))
        return st.text(max_size=20)
    if kind == "integer":
        return st.integers(schema.get("minimum", -5), min(schema.get("maximum", 50), 50))
    if kind == "number":
        return st.floats(schema.get("minimum", -1.0), schema.get("maximum", 2.0), allow_nan=False)
    if kind == "null":
        return st.none()
    return ANY_JSON


LABELS = st.one_of(st.text(string.ascii_letters + string.digits + "-_ /é", min_size=1, max_size=12),
                   st.text(max_size=12), st.just("x" * 201))


@pytest.fixture(scope="module")
def server(omniglot_artifact, tmp_path_factory):
    with Server(omniglot_artifact, "--backend", "onnxruntime", "--gallery",
                tmp_path_factory.mktemp("openapi") / "g.npz", "--max-images", "4") as running:
        running.call("POST", "/classes/seed", {"images": IMAGES[:2]})
        yield running


def operations(server):
    schema = server.call("GET", "/openapi.json")[1]
    components = schema["components"]["schemas"]
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            found.append((method.upper(), path, body, components, set(operation["responses"])))
    return found


def test_the_schema_names_every_endpoint(server):
    ops = {(m, p) for m, p, *_ in operations(server)}
    assert {("POST", "/classify"), ("POST", "/detect"), ("POST", "/classes/{label}"), ("DELETE", "/classes/{label}"),
            ("GET", "/classes"), ("GET", "/health"), ("GET", "/metrics")} <= ops


@pytest.mark.parametrize("index", range(7))
def test_every_operation_answers_its_schema_or_a_4xx_sentence(server, index):
    ops = sorted(operations(server), key=lambda op: (op[1], op[0]))
    if index >= len(ops):
        pytest.skip("fewer operations")
    method, path, body_schema, components, documented = ops[index]
    bodies = (st.one_of(from_schema(body_schema, components), ANY_JSON) if body_schema else st.none())
    statuses = []

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(body=bodies, label=LABELS)
    def check(body, label):
        target = path.replace("{label}", quote(label, safe="")) if "{label}" in path else path
        status, answer, headers = server.call(method, target, body, timeout=60)
        statuses.append(status)
        assert status < 500, (method, target, body, answer)
        if status >= 400:
            assert isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"], answer
        elif headers.get("content-type", "").startswith("application/json"):
            assert str(status) in documented, (method, path, status)
            json.dumps(answer)

    check()
    assert server.call("GET", "/health")[0] == 200
    if (method, path) not in {("POST", "/detect"), ("DELETE", "/classes/{label}")}:  # these refuse by design here
        assert any(s < 400 for s in statuses), f"{method} {path}: no generated request was valid ({set(statuses)})"
