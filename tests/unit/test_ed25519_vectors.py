"""R4: Ed25519 conformance of the one verifier every replica uses (libsodium through PyNaCl).

Two vector sets, described in ``docs/ed25519-acceptance.md``:

* Wycheproof ``ed25519_test.json``: every case must give its expected result.
* C2SP ``ed25519vectors.json``: edge cases with no single right answer. Verifiers disagree on them,
  so the exact set libsodium accepts is pinned here. If a PyNaCl or libsodium upgrade changes it,
  this test fails, because replicas running old and new versions would fork.

The vectors are read from ``../shared/vectors`` (the folder beside the repository) when it exists,
else from the copy in ``tests/vectors``; if neither is there the tests fail rather than skip.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import base58
import pytest

from autarky.crypto.did import InvalidDid, did_from_public_key, is_did_key, public_key_from_did
from autarky.crypto.keys import InvalidKey, PublicKey, check_public_key, verify_raw
from support.small_order import SMALL_ORDER_KEY_HEX

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_VECTORS = REPOSITORY / ".." / "shared" / "vectors"
COPIED_VECTORS = REPOSITORY / "tests" / "vectors"
WYCHEPROOF = "ed25519_test.json"
C2SP = "ed25519vectors.json"

# Wycheproof marks some cases "acceptable": either answer is allowed by the standard. Replicas must
# still agree, so each such case gets libsodium's answer pinned here by tcId (True = accepted).
# The current file (v1, 151 cases) has none; a vector update that adds some fails until they are pinned.
WYCHEPROOF_ACCEPTABLE: dict[int, bool] = {}

# The C2SP case numbers that verify_raw (libsodium's crypto_sign_open) accepts.
C2SP_ACCEPTED = (
    7, 29, 50, 117, 139, 161, 182, 249, 305, 411, 425, 438, 465, 473, 481, 489, 497, 511, 525, 538, 565,
    573, 581, 589, 597, 611, 625, 638, 665, 673, 681, 689, 697, 711, 725, 738, 765, 773, 781, 789, 797,
    832, 899,
)  # fmt: skip
C2SP_ACCEPTED_COUNT = 43
# sha256 of the accepted numbers, sorted, in decimal, joined by ","; quoted in docs/ed25519-acceptance.md.
C2SP_ACCEPTED_SHA256 = "36521713b91ca5d28544f38cd646b5494f5911399bfe4635a8bf2f2a88f13bcf"

# Cases whose public key check_public_key refuses, counted per flag (a case counts once per flag).
C2SP_REFUSED_KEY_COUNT = 886
C2SP_REFUSED_KEYS_BY_FLAG = {
    "low_order_component_A": 774,
    "low_order_component_R": 645,
    "low_order_R": 566,
    "low_order_residue": 563,
    "low_order_A": 526,
    "non_canonical_R": 304,
    "non_canonical_A": 226,
    "reencoded_k": 140,
}

SMALL_ORDER_KEYS = list(SMALL_ORDER_KEY_HEX)

_KEY_FLAGS = frozenset({"low_order_A", "non_canonical_A", "low_order_component_A"})
_ACCEPTED_FLAGS = frozenset({"low_order_component_A", "low_order_component_R"})


def vectors_folder() -> Path:
    """``../shared/vectors`` if present, else the copy in ``tests/vectors``; fail if neither is."""
    for folder in (SHARED_VECTORS, COPIED_VECTORS):
        if all((folder / name).is_file() for name in (WYCHEPROOF, C2SP)):
            return folder.resolve()
    pytest.fail(
        f"Ed25519 vectors not found: expected {WYCHEPROOF} and {C2SP} in {SHARED_VECTORS.resolve()} "
        f"(the 'shared' folder beside the repository) or in {COPIED_VECTORS}. R4 cannot be checked."
    )


@functools.cache
def _load(name: str) -> Any:
    return json.loads((vectors_folder() / name).read_text(encoding="utf-8"))


def _c2sp_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = _load(C2SP)
    assert len(cases) == 914, "the C2SP vector file changed; re-pin the acceptance set deliberately"
    return cases


def _flags(case: dict[str, Any]) -> set[str]:
    return set(case["flags"] or ())


def _verifies(case: dict[str, Any]) -> bool:
    # C2SP messages are plain text; the signature covers their UTF-8 bytes, with no domain tag.
    return verify_raw(bytes.fromhex(case["key"]), case["msg"].encode("utf-8"), bytes.fromhex(case["sig"]))


def _key_refused(raw: bytes) -> bool:
    try:
        check_public_key(raw)
    except InvalidKey:
        return True
    return False


def _did_by_hand(raw: bytes) -> str:
    """A did:key built without the library's checks, to feed a bad key to the parser."""
    return "did:key:z" + base58.b58encode(b"\xed\x01" + raw).decode("ascii")


# --- where the vectors come from ---------------------------------------------------------------------


def test_copied_vectors_match_the_shared_ones() -> None:
    """The copy in tests/vectors is the fallback for a clone without ../shared; it must not drift."""
    if not SHARED_VECTORS.is_dir():
        pytest.skip(f"{SHARED_VECTORS.resolve()} is absent; the tests use the copy in {COPIED_VECTORS}")
    for name in (WYCHEPROOF, C2SP):
        assert (COPIED_VECTORS / name).read_bytes() == (SHARED_VECTORS / name).read_bytes(), name


# --- Wycheproof --------------------------------------------------------------------------------------


def test_wycheproof_every_case_gives_its_expected_result() -> None:
    data = _load(WYCHEPROOF)
    assert data["algorithm"] == "EDDSA"
    results: Counter[str] = Counter()
    mismatches = []
    for group in data["testGroups"]:
        assert group["publicKey"]["curve"] == "edwards25519"
        key = bytes.fromhex(group["publicKey"]["pk"])
        for case in group["tests"]:
            results[case["result"]] += 1
            accepted = verify_raw(key, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
            if case["result"] == "acceptable":
                assert case["tcId"] in WYCHEPROOF_ACCEPTABLE, (
                    f"pin libsodium's answer for tcId {case['tcId']}"
                )
                expected = WYCHEPROOF_ACCEPTABLE[case["tcId"]]
            else:
                expected = case["result"] == "valid"
            if accepted != expected:
                mismatches.append((case["tcId"], case["comment"], case["result"], accepted))
    assert mismatches == []
    assert sum(results.values()) == data["numberOfTests"] == 151
    assert results == {"valid": 88, "invalid": 63}


def test_wycheproof_keys_are_all_acceptable() -> None:
    for group in _load(WYCHEPROOF)["testGroups"]:
        check_public_key(bytes.fromhex(group["publicKey"]["pk"]))


# --- C2SP edge cases: the pinned acceptance set ------------------------------------------------------


def test_c2sp_acceptance_set_is_pinned() -> None:
    accepted = [case["number"] for case in _c2sp_cases() if _verifies(case)]
    assert len(accepted) == C2SP_ACCEPTED_COUNT
    assert sorted(accepted) == list(C2SP_ACCEPTED)
    fingerprint = hashlib.sha256(",".join(map(str, sorted(accepted))).encode("ascii")).hexdigest()
    assert fingerprint == C2SP_ACCEPTED_SHA256


def test_c2sp_acceptance_follows_the_flags() -> None:
    """libsodium accepts exactly the cases whose only oddity is a mixed-order A or R.

    It refuses small-order A and R, non-canonical encodings of A and R, and signatures that hold
    only under the cofactored equation (low_order_residue), since it verifies without the cofactor.
    """
    wrong = [case["number"] for case in _c2sp_cases() if _verifies(case) != (_flags(case) <= _ACCEPTED_FLAGS)]
    assert wrong == []


def test_c2sp_keys_refused_at_the_door() -> None:
    """check_public_key refuses every key with any low-order part, canonical or not, by flag."""
    refused = [case for case in _c2sp_cases() if _key_refused(bytes.fromhex(case["key"]))]
    assert len(refused) == C2SP_REFUSED_KEY_COUNT
    by_flag = Counter(flag for case in refused for flag in _flags(case))
    assert dict(by_flag) == C2SP_REFUSED_KEYS_BY_FLAG
    disagreeing = [
        case["number"]
        for case in _c2sp_cases()
        if _key_refused(bytes.fromhex(case["key"])) != bool(_flags(case) & _KEY_FLAGS)
    ]
    assert disagreeing == []


def test_c2sp_effective_acceptance_with_key_check() -> None:
    """What the ledger accepts: the key passed check_public_key at registration, and the signature verifies.

    42 of the 43 signatures libsodium accepts come from keys with a low-order component; those keys
    never get into the directory, so only the one ordinary case remains.
    """
    effective = [
        case["number"]
        for case in _c2sp_cases()
        if not _key_refused(bytes.fromhex(case["key"])) and _verifies(case)
    ]
    assert effective == [305]


def test_small_order_key_list_covers_the_vectors() -> None:
    """The hand-written list above holds every small-order key the C2SP vectors use."""
    used = {case["key"] for case in _c2sp_cases() if "low_order_A" in _flags(case)}
    assert used <= set(SMALL_ORDER_KEYS)
    assert len(set(SMALL_ORDER_KEYS)) == 14


# --- small-order keys are refused on every path into the system --------------------------------------


@pytest.mark.parametrize("key_hex", SMALL_ORDER_KEYS)
def test_small_order_keys_are_refused_everywhere(key_hex: str) -> None:
    raw = bytes.fromhex(key_hex)
    with pytest.raises(InvalidKey):
        check_public_key(raw)
    with pytest.raises(InvalidKey):
        PublicKey(raw)
    with pytest.raises(InvalidKey):
        did_from_public_key(raw)
    with pytest.raises(InvalidDid):
        public_key_from_did(_did_by_hand(raw))
    assert not is_did_key(_did_by_hand(raw))


def test_mixed_order_keys_are_refused_everywhere() -> None:
    """Keys with both a prime-order and a low-order component slip past any blocklist, not past us."""
    mixed = sorted(
        {
            case["key"]
            for case in _c2sp_cases()
            if "low_order_component_A" in _flags(case) and "low_order_A" not in _flags(case)
        }
    )
    assert mixed, "the C2SP vectors should contain mixed-order keys"
    for key_hex in mixed:
        raw = bytes.fromhex(key_hex)
        with pytest.raises(InvalidKey):
            PublicKey(raw)
        with pytest.raises(InvalidKey):
            did_from_public_key(raw)
        with pytest.raises(InvalidDid):
            public_key_from_did(_did_by_hand(raw))
