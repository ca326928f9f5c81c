"""R6 for the light-verification API: whatever bytes or JSON a node (or anyone) hands a device,
``autarky.verify`` answers a value it proved or a typed :class:`VerifyError`, never anything else.

A real bundle is built from a chain run in memory (a genesis with funded accounts, one block), signed
by a node key the anchor trusts. The fuzz then feeds :meth:`ProofBundle.decode` random bytes and
damaged copies of the real encoding, :meth:`ProofBundle.from_json` damaged answers, and
:meth:`ProofBundle.verify` bundles with a damaged header, value, proof or signature. Each either
verifies to values that are all the original ones (a change that does not matter, or that drops
entries) or is refused with a ``verify.*`` code.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.modules.harness import Chain
from autarky.node.genesis import dev_genesis
from autarky.verify import CODES, ProofBundle, TrustAnchor, VerifyError

NODE = SigningKey.from_seed(b"verify-fuzz-node".ljust(32, b"\x00"))
ACCOUNTS = [SigningKey.from_seed(bytes([i + 1]) * 32) for i in range(4)]
CHAIN_ID = "verify-fuzz"


def _bundle() -> tuple[ProofBundle, dict[str, bytes | None]]:
    genesis = dev_genesis(
        CHAIN_ID, time_ms=1_767_225_600_000, allocations=[(k.did, "aut", 1000) for k in ACCOUNTS]
    )
    chain = Chain.from_genesis(genesis)
    tree = chain.tree
    header = chain.headers[-1]
    assert tree.root == header.state_root
    keys = [f"bank/bal/{k.did}/aut" for k in ACCOUNTS] + ["bank/bal/nobody/aut"]
    entries = tuple((key, chain.data.get(key), tree.prove(key)) for key in keys)
    signature = NODE.sign(Domain.BLOCK_HEADER, header.encode(), CHAIN_ID)
    return ProofBundle(header, entries, signature, NODE.public_key.raw), {k: v for k, v, _ in entries}


BUNDLE, VALUES = _bundle()
ENCODED = BUNDLE.encode()
ANCHOR = TrustAnchor(CHAIN_ID, node_keys=(NODE.public_key.raw,))


def _outcome(check: Any) -> str:
    try:
        state = check()
    except VerifyError as exc:
        assert exc.code in CODES
        return exc.code
    for key in state.keys:  # fewer keys is fine (an empty bundle proves nothing); another value never
        assert key in VALUES and state.get(key) == VALUES[key], f"{key} verified to another value"
    return "ok"


def test_the_real_bundle_verifies() -> None:
    assert _outcome(lambda: ProofBundle.decode(ENCODED).verify(ANCHOR)) == "ok"


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_with_a_code(data: bytes) -> None:
    assert _outcome(lambda: ProofBundle.decode(data).verify(ANCHOR)) != "ok" or data == ENCODED


@settings(max_examples=500)
@given(st.lists(st.tuples(st.integers(0, len(ENCODED) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_damaged_encodings_verify_to_the_same_values_or_are_refused(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(ENCODED)
    for position, mask in flips:
        damaged[position] ^= mask
    _outcome(lambda: ProofBundle.decode(bytes(damaged)).verify(ANCHOR))


JSON_ANSWER = {
    "header": BUNDLE.header.to_json(),
    "signature": BUNDLE.signature.hex() if BUNDLE.signature else None,
    "node_key": NODE.did,
    "certificate": None,
    "entries": [
        {"key": k, "value": None if v is None else v.hex(), "proof": p.encode().hex()}
        for k, v, p in BUNDLE.entries
    ],
}
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=70), st.lists(st.integers(), max_size=3)
)


@settings(max_examples=500)
@given(st.data())
def test_damaged_json_answers_verify_to_the_same_values_or_are_refused(data: st.DataObject) -> None:
    answer = copy.deepcopy(JSON_ANSWER)
    target: Any = answer
    path = data.draw(
        st.sampled_from(
            [
                ("header", "state_root"),
                ("header", "height"),
                ("header", "hash"),
                ("signature",),
                ("node_key",),
                ("certificate",),
                ("entries", 0, "value"),
                ("entries", 1, "proof"),
                ("entries", 4, "key"),
                ("entries",),
            ]
        )
    )
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(JUNK)
    _outcome(lambda: ProofBundle.from_json(answer).verify(ANCHOR))
