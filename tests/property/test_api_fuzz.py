"""R6: fuzzing the HTTP API. No input may produce a 5xx, and no rejected input may change the state.

Hypothesis (derandomized, so every run sends the same requests and a failure reproduces) drives a
real node over real HTTP:

* every operation of the node's own OpenAPI document, with random path parameters, query values,
  headers and bodies;
* random paths and methods;
* ``POST /api/v1/tx`` with random bytes, random JSON, and signed transactions mutated byte by byte.

After every request the state root must be the one the node started with: nothing sent here can be
a valid transaction (random keys hold no funds and carry the wrong sequence), so every submission
is a rejection. Every 4xx answer must carry the one error shape. Bounded to about 30 s in total.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.web.testing import API_KEY, LiveNode, TestKeys, standard_genesis


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
CONTENT_TYPES = (
    None,
    "application/cbor",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/CBOR",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "",
    ";;;",
)
SPECIAL_VALUES = (
    "",
    "latest",
    "-1",
    "0",
    "1",
    "1e9",
    "9" * 30,
    "-" + "9" * 30,
    "NaN",
    "null",
    "true",
    "did:key:z6Mk",
    "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
    "module:fees",
    "bank/params",
    "ab" * 32,
    "../../etc/passwd",
    "%00",
    "\x00",
    "ü" * 50,
    "a" * 5000,
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    data_dir = Path(tmp_path_factory.mktemp("fuzz")) / "node"
    with LiveNode(data_dir, standard_genesis(TestKeys.create()), api_key=API_KEY) as node:
        yield node


@pytest.fixture(scope="module")
def operations(live: LiveNode) -> list[tuple[str, str, list[dict[str, Any]]]]:
    spec = live.http.get("/openapi.json").json()
    found = [
        (method.upper(), path, operation.get("parameters", []))
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(found) >= 15, found
    return found


@pytest.fixture(scope="module")
def initial_root(live: LiveNode) -> str:
    return live.state_root()


def values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_VALUES),
        st.text(max_size=60),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    )


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def bodies() -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        st.binary(max_size=600),
        json_values().map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=200).map(lambda raw: json.dumps({"tx": raw.hex()}).encode()),
        st.text(max_size=100).map(lambda text: json.dumps({"tx": text}).encode()),
    )


def headers() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from([c for c in CONTENT_TYPES if c is not None]),
            "X-API-Key": st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
            "Accept": st.sampled_from(["application/did+json", "text/event-stream", "*/*", "text/html"]),
        },
    )


def send(live: LiveNode, method: str, path: str, **kwargs: Any) -> httpx.Response:
    url = live.url + path  # absolute: httpx refuses a relative path such as "//x"
    if method == "GET" and path.split("?")[0] == "/api/v1/events":
        # A stream never ends by itself: look at the status and the first bytes, then hang up.
        with live.http.stream(method, url, **kwargs) as response:
            if response.status_code == 200:
                next(response.iter_bytes(), b"")
            else:
                response.read()
            return response
    return live.http.request(method, url, **kwargs)


def check(live: LiveNode, response: httpx.Response, initial_root: str) -> None:
    assert response.status_code < 500, (response.request.method, str(response.request.url), response.text)
    if response.status_code >= 400 and response.request.method != "HEAD":
        body = response.json()
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
        assert isinstance(body["error"]["message"], str), body
    assert live.state_root() == initial_root, "a rejected request changed the state"


@fuzz_settings(1000)
@given(data=st.data())
def test_every_openapi_operation_survives_random_input(
    live: LiveNode,
    operations: list[tuple[str, str, list[dict[str, Any]]]],
    initial_root: str,
    data: st.DataObject,
) -> None:
    method, template, parameters = data.draw(st.sampled_from(operations), label="operation")
    path = template
    query: dict[str, str] = {}
    for parameter in parameters:
        if parameter["in"] == "path":
            value = data.draw(values(), label=parameter["name"])
            path = path.replace("{" + parameter["name"] + "}", quote(value, safe="") or "%20")
        elif parameter["in"] == "query" and data.draw(st.booleans(), label=f"send {parameter['name']}"):
            query[parameter["name"]] = data.draw(values(), label=parameter["name"])
    query.update(data.draw(st.dictionaries(st.text(max_size=10), values(), max_size=2), label="extra query"))
    if method == "POST" and template == "/api/v1/tx":
        query["wait"] = "false"  # nothing here commits; do not wait for a block that never includes it
    body = data.draw(bodies(), label="body") if method in ("POST", "PUT", "PATCH") else None
    response = send(
        live, method, path, params=query, content=body, headers=data.draw(headers(), label="headers")
    )
    check(live, response, initial_root)


@fuzz_settings(500)
@given(
    method=st.sampled_from(METHODS),
    segments=st.lists(values(), max_size=5),
    prefix=st.sampled_from(
        ["/", "/api/v1/", "/api/v1/blocks/", "/api/v1/accounts/", "/static/", "/api/v1/did/"]
    ),
    body=bodies(),
)
def test_random_paths_and_methods_never_fail_the_server(
    live: LiveNode, initial_root: str, method: str, segments: list[str], prefix: str, body: bytes | None
) -> None:
    path = prefix + "/".join(quote(segment, safe="") for segment in segments)
    content = body if method in ("POST", "PUT", "PATCH") else None
    response = send(live, method, path, content=content, params={"wait": "false"})
    check(live, response, initial_root)


def _signed_transaction(seed: bytes, chain_id: str, sequence: int) -> bytes:
    key = SigningKey.from_seed(sha256(seed))
    message = bank_messages.send(SigningKey.from_seed(sha256(b"fuzz-recipient")).did, "aut", 1)
    return sign_tx(TxBody(chain_id, key.did, sequence, 1, 0, (message,)), key).raw


@st.composite
def mutated_transactions(draw: st.DrawFn) -> bytes:
    """A signed transfer from an unfunded key with a wrong sequence, then cut, grown or bit-flipped."""
    chain_id = draw(st.sampled_from(["test", "other"]))
    raw = bytearray(
        _signed_transaction(draw(st.binary(max_size=8)), chain_id, draw(st.integers(1, 2**64 - 1)))
    )
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "replace"]))
        position = draw(st.integers(0, len(raw)))
        if kind == "flip" and position < len(raw):
            raw[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del raw[position:]
        elif kind == "insert":
            raw[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif position < len(raw):
            raw[position] = draw(st.integers(0, 255))
    return bytes(raw)


@fuzz_settings(1200)
@given(
    raw=st.one_of(mutated_transactions(), st.binary(max_size=2000)),
    as_json=st.booleans(),
    wait=st.sampled_from(["true", "false", "1", "0", "yes", "no", "maybe", ""]),
)
def test_transaction_submissions_are_rejected_without_a_trace(
    live: LiveNode, initial_root: str, raw: bytes, as_json: bool, wait: str
) -> None:
    if as_json:
        request = {
            "content": json.dumps({"tx": raw.hex()}).encode(),
            "headers": {"Content-Type": "application/json"},
        }
    else:
        request = {"content": raw, "headers": {"Content-Type": "application/cbor"}}
    response = live.http.post("/api/v1/tx", params={"wait": wait}, **request)
    check(live, response, initial_root)
    if response.status_code == 400 and "status" in response.json():
        answer = response.json()
        assert answer["status"] == "rejected" and answer["code"] == answer["error"]["code"]
