"""R6: fuzzing the canonical CBOR decoder, the transaction decoder and the executor behind them.

Inputs (hypothesis; derandomized under the ``ci`` profile, so a run repeats exactly; about 30 s):

* random bytes;
* random CBOR items written by a hand-made encoder that can produce everything the canonical
  form forbids: floats of every width, simple values, tags (dates, bignums, regexes, sets,
  shared references, self-describe, ...), indefinite lengths, reserved heads, stray breaks,
  64-bit lengths, huge integers, deep nesting, duplicate and unsorted map keys, integer heads
  longer than needed, truncations and trailing bytes;
* single-byte replacements, deletions, insertions, truncations and extensions of valid signed
  transactions;
* well-signed transactions carrying random messages (real message types, random fields), which
  reach the module handlers.

Properties:

* :func:`canonical_decode` raises nothing but :class:`DecodeError`, and what it accepts is
  canonical: re-encoding gives the input bytes back;
* :func:`decode_tx` raises nothing but :class:`TxError` with ``core.malformed``;
* executing a block holding the input never raises, gives a receipt whose code is one of the
  chain's declared codes, and if the transaction failed before changing anything (steps 1-8 of the
  executor's precedence, seen as: the sender's sequence did not move) the state root equals the
  previous block's; otherwise the module invariants still hold;
* every other encoding of a data-model value than the canonical one is refused;
* ``canonical_decode(canonical_encode(v)) == v`` over the data model, and ``canonical_encode``
  raises ``TypeError`` for floats, sets and other objects.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from autarky.crypto.keys import SigningKey
from autarky.encoding import MAX_DEPTH, DecodeError, canonical_decode, canonical_encode
from autarky.ledger import errors as core_errors
from autarky.ledger.errors import ErrorCode, TxError
from autarky.ledger.tx import TxBody, decode_tx, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import errors as bank_errors
from autarky.modules.bank import messages as bank_messages
from autarky.modules.harness import Chain
from autarky.modules.identity import errors as identity_errors
from autarky.modules.identity import messages as identity_messages
from autarky.modules.validators import errors as validators_errors
from autarky.web.testing import TestKeys, standard_genesis

KEYS = TestKeys.create()
GENESIS = standard_genesis(KEYS)
CHAIN_ID: str = GENESIS["chain_id"]


def _declared_codes() -> frozenset[str]:
    codes = {core_errors.OK}
    for module in (core_errors, bank_errors, identity_errors, validators_errors):
        codes.update(value.code for value in vars(module).values() if isinstance(value, ErrorCode))
    return frozenset(codes)


DECLARED_CODES = _declared_codes()
# Codes that only steps 1-7 of the precedence produce; such a transaction changes nothing.
REFUSED_BEFORE_EXECUTION = frozenset(
    code.code
    for code in (
        core_errors.MALFORMED,
        core_errors.WRONG_CHAIN,
        core_errors.EXPIRED,
        core_errors.BAD_SIGNATURE,
        core_errors.UNKNOWN_SIGNER,
        core_errors.ACCOUNT_REVOKED,
        core_errors.BAD_SEQUENCE,
        core_errors.KEY_SCOPE,
        core_errors.UNKNOWN_MESSAGE,
    )
)


def fuzz(max_examples: int) -> settings:
    # Inherits the loaded profile (``ci``: derandomized); only the budget is set here.
    return settings(max_examples=max_examples, deadline=None)


# --- the oracles ---------------------------------------------------------------------------------------


def check_canonical_decode(data: bytes) -> Any:
    try:
        value = canonical_decode(data)
    except DecodeError:
        return None
    # Accepted means canonical: the one encoding of the value is the input.
    assert canonical_encode(value) == data, data.hex()
    return value


def check_decode_tx(data: bytes) -> None:
    try:
        decode_tx(data)
    except TxError as exc:
        assert exc.code == "core.malformed", (exc.code, data.hex())


def check_block(chain: Chain, raw: bytes, sender: str | None = None) -> str:
    """Execute ``raw`` alone in a block; check the receipt and what the block changed; return the code."""
    root = chain.root
    sequences = {key.did: chain.sequence(key.did) for key in _all_keys()}
    (receipt,) = chain.execute([raw])
    assert receipt.code in DECLARED_CODES, receipt.code
    moved = [did for did, sequence in sequences.items() if chain.sequence(did) != sequence]
    if not moved:
        assert chain.root == root, f"{receipt.code}: nothing applied but the state root changed"
    else:
        assert moved == [receipt.sender], (moved, receipt.sender)
        assert receipt.code not in REFUSED_BEFORE_EXECUTION, receipt.code
        assert chain.invariants() == []
    if receipt.code in REFUSED_BEFORE_EXECUTION:
        assert not moved
    if sender is not None and receipt.code != core_errors.MALFORMED.code:
        assert receipt.sender == sender
    return receipt.code


def _all_keys() -> tuple[Any, ...]:
    return (KEYS.faucet, KEYS.alice, KEYS.bob, KEYS.carol, KEYS.battery, KEYS.solar)


def check_everything(data: bytes) -> None:
    check_canonical_decode(data)
    check_decode_tx(data)
    # A fresh chain per input, so an example's outcome never depends on the examples before it.
    assert check_block(Chain.from_genesis(GENESIS), data) in REFUSED_BEFORE_EXECUTION


# --- a CBOR writer that can write what the canonical form forbids ----------------------------------------

WIDTHS = (0, 1, 2, 4, 8)  # 0: the value in the initial byte (< 24)


def head(major: int, value: int, width: int | None = None) -> bytes:
    """The first byte(s) of an item; ``width`` forces an argument size (a longer one is non-canonical)."""
    if width is None:
        width = next(w for w in WIDTHS if (value < 24 if w == 0 else value < 256**w))
    if width == 0:
        assert value < 24
        return bytes([major << 5 | value])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + value.to_bytes(width, "big")


def widths_for(value: int) -> list[int]:
    return [w for w in WIDTHS if (value < 24 if w == 0 else value < 256**w)]


@st.composite
def heads(draw: st.DrawFn, major: int, value: int) -> bytes:
    return head(major, value, draw(st.sampled_from(widths_for(value))))


@st.composite
def cbor_integers(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["uint", "nint", "bignum", "canonical"]))
    if kind == "canonical":
        return canonical_encode(draw(st.integers(min_value=-(2**300), max_value=2**300)))
    if kind == "bignum":
        magnitude = draw(st.binary(max_size=40))
        return draw(st.sampled_from([b"\xc2", b"\xc3"])) + head(2, len(magnitude)) + magnitude
    return draw(heads(0 if kind == "uint" else 1, draw(st.integers(0, 2**64 - 1))))


@st.composite
def cbor_strings(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        payload = draw(st.binary(max_size=24))
        major = 2
    else:
        payload = (
            draw(st.text(max_size=12)).encode("utf-8") if draw(st.booleans()) else draw(st.binary(max_size=8))
        )
        major = 3  # raw bytes as text: often invalid UTF-8
    if draw(st.booleans()):
        return draw(heads(major, len(payload))) + payload
    cut = draw(st.integers(0, len(payload)))
    chunks = [payload[:cut], payload[cut:]]
    return bytes([major << 5 | 31]) + b"".join(head(major, len(c)) + c for c in chunks) + b"\xff"


@st.composite
def cbor_floats(draw: st.DrawFn) -> bytes:
    width = draw(st.sampled_from([2, 4, 8]))
    if width == 8 and draw(st.booleans()):
        bits = struct.pack(">d", draw(st.floats(allow_nan=True, allow_infinity=True)))
    else:
        bits = draw(st.binary(min_size=width, max_size=width))  # any bit pattern: NaNs, subnormals, ...
    return bytes([{2: 0xF9, 4: 0xFA, 8: 0xFB}[width]]) + bits


SIMPLE_AND_ODD = st.sampled_from(
    [b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf8\x20", b"\xf8\xff", b"\xf8\x10", b"\xe0", b"\xf3", b"\xff"]
    + [bytes([major << 5 | info]) for major in range(8) for info in (28, 29, 30)]  # reserved heads
    + [bytes([major << 5 | 27]) + b"\xff" * 8 for major in (2, 3, 4, 5)]  # 2**64-1 long
    + [b"\x5b\x00\x00\x00\x00\x00\x00\x00\x10abc", b"\x9a\x00\x01\x00\x00\x00"]
)

TAGS = st.one_of(
    st.sampled_from(
        [0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 52, 54]
    ),
    st.sampled_from([256, 258, 259, 260, 261, 262, 263, 266, 1001, 1002, 1003, 55799, 2**32 + 5, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)

LEAVES = st.one_of(cbor_integers(), cbor_strings(), cbor_floats(), SIMPLE_AND_ODD)


def _containers(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def arrays(draw: st.DrawFn) -> bytes:
        items = draw(st.lists(children, max_size=4))
        if draw(st.booleans()):
            return draw(heads(4, len(items))) + b"".join(items)
        return b"\x9f" + b"".join(items) + b"\xff"

    @st.composite
    def maps(draw: st.DrawFn) -> bytes:
        pairs = draw(st.lists(st.tuples(children, children), max_size=4))
        duplicate: bool = draw(st.booleans())
        if pairs and duplicate:
            pairs.append(pairs[0])  # a duplicate key
        body = b"".join(key + value for key, value in pairs)
        if draw(st.booleans()):
            return draw(heads(5, len(pairs))) + body
        return b"\xbf" + body + b"\xff"

    @st.composite
    def tagged(draw: st.DrawFn) -> bytes:
        return head(6, draw(TAGS)) + draw(children)

    return st.one_of(arrays(), maps(), tagged())


CBOR_ITEMS = st.recursive(LEAVES, _containers, max_leaves=12)


@st.composite
def deep_items(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(MAX_DEPTH - 2, 400))
    opener = draw(st.sampled_from([b"\x81", b"\xa1\x00", b"\x9f", b"\xd8\x18"]))
    return opener * depth + draw(LEAVES)


@st.composite
def damaged(draw: st.DrawFn, items: st.SearchStrategy[bytes]) -> bytes:
    data = draw(items)
    how = draw(st.sampled_from(["as is", "truncate", "extend"]))
    if how == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "extend":
        return data + draw(st.binary(min_size=1, max_size=4))
    return data


# --- 1-2: random bytes and random CBOR items --------------------------------------------------------------


@fuzz(1500)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    check_everything(data)


@fuzz(1000)
@given(damaged(st.one_of(CBOR_ITEMS, deep_items())))
def test_random_cbor_items(data: bytes) -> None:
    check_everything(data)


@fuzz(400)
@given(damaged(CBOR_ITEMS))
def test_random_cbor_items_as_transaction_parts(data: bytes) -> None:
    """Random items in the places of a transaction: the body, the signature list, the body's fields."""
    signed = sign_tx(
        TxBody(CHAIN_ID, KEYS.alice.did, 0, 1, 0, (bank_messages.send(KEYS.bob.did, "aut", 1),)), KEYS.alice
    )
    pair = canonical_encode([signed.signatures[0][0], signed.signatures[0][1]])
    candidates = [
        b"\x83\x01" + data + canonical_encode([[signed.signatures[0][0], signed.signatures[0][1]]]),
        b"\x83\x01" + canonical_encode(signed.body_bytes) + data,
        b"\x83\x01" + canonical_encode(signed.body_bytes) + b"\x81" + data,
        b"\x83" + data + canonical_encode(signed.body_bytes) + b"\x81" + pair,
        b"\x83\x01" + canonical_encode(b"\xa7" + signed.body_bytes[1:] + data) + b"\x81" + pair,
    ]
    for candidate in candidates:
        if candidate != signed.raw:  # an empty ``data`` can rebuild the valid transaction itself
            check_everything(candidate)


# --- 3: mutations of valid signed transactions -------------------------------------------------------------


def _valid_transactions() -> list[bytes]:
    bob, alice = KEYS.bob.did, KEYS.alice.did
    plain = sign_tx(
        TxBody(CHAIN_ID, alice, 0, 1, 0, (bank_messages.send(bob, "aut", 5),), "memo"), KEYS.alice
    )
    cosigned = sign_tx(
        TxBody(CHAIN_ID, KEYS.battery.did, 0, 1, 7, (bank_messages.send(bob, "kwh", 3),)),
        KEYS.battery,
        (KEYS.alice,),
    )
    several = sign_tx(
        TxBody(
            CHAIN_ID,
            alice,
            0,
            2,
            0,
            (bank_messages.send(bob, "aut", 1), bank_messages.freeze(KEYS.battery.did)),
        ),
        KEYS.alice,
    )
    return [plain.raw, cosigned.raw, several.raw]


VALID = _valid_transactions()


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(VALID))
    how = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "extend", "flip"]))
    at = draw(st.integers(0, len(raw) - 1))
    if how == "replace":
        mutated = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    elif how == "flip":
        mutated = raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1 :]
    elif how == "delete":
        mutated = raw[:at] + raw[at + 1 :]
    elif how == "insert":
        mutated = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    elif how == "truncate":
        mutated = raw[:at]
    else:
        mutated = raw + draw(st.binary(min_size=1, max_size=8))
    return mutated


def test_the_unmutated_transactions_are_valid() -> None:
    """The control for the mutation fuzz: each base transaction would apply on a fresh chain."""
    for raw in VALID:
        (receipt,) = Chain.from_genesis(GENESIS).execute([raw])
        assert receipt.ok, receipt


@fuzz(1500)
@given(mutations())
def test_mutated_signed_transactions(mutated: bytes) -> None:
    assume(mutated not in VALID)
    check_canonical_decode(mutated)
    check_decode_tx(mutated)
    code = check_block(Chain.from_genesis(GENESIS), mutated)
    event(code)
    assert code in REFUSED_BEFORE_EXECUTION, code


# --- 4: well-signed transactions with random messages reach the handlers ------------------------------------

NEWCOMERS = [SigningKey.from_seed(bytes([0xC0 + index]) * 32) for index in range(3)]
MESSAGE_TYPES = [message_type for module in build_app().modules for message_type in module.message_types]
# The fields of each message type (required and optional), so that many messages get past the
# shape check into the handlers; the values are drawn with a bias to plausible ones.
FIELDS = {
    "bank/send": ("to", "asset", "amount"),
    "bank/set_guardrails": ("machine", "guardrails"),
    "bank/freeze": ("machine",),
    "bank/unfreeze": ("machine",),
    "bank/sweep": ("machine", "to"),
    "identity/register": ("did", "kind", "maker", "model", "capabilities", "metadata", "serial_digest"),
    "identity/add_key": ("did", "key", "actions", "allowance"),
    "identity/remove_key": ("did", "key"),
    "identity/rotate": ("did", "old_key", "new_key"),
    "identity/revoke": ("did",),
    "identity/recover": ("did", "new_key"),
}
DIDS = [key.did for key in (*_all_keys(), *NEWCOMERS)] + ["did:key:z6Mk", "module:fees", "", "alice"]
PUBLIC_KEYS = [key.public_key.raw for key in (*_all_keys(), *NEWCOMERS)]
SMALL_ORDER_KEY = bytes([1]) + bytes(31)
ASSETS = ["aut", "kwh", "zzz", "", "AUT", "a" * 17]
AMOUNTS = st.one_of(
    st.sampled_from([0, 1, 2, 5, 1000, 10**6, 10**12, 2**64 - 1, 2**64, -1]), st.integers(0, 5000)
)

DATA_MODEL_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=40),
    st.text(max_size=12),
    st.sampled_from([*DIDS, *ASSETS, "full", "bank/send", "*"]),
)
ANY_VALUE = st.recursive(
    DATA_MODEL_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
LIMITS = st.dictionaries(
    st.sampled_from(ASSETS),
    st.fixed_dictionaries(
        {"per_tx": AMOUNTS, "per_window": AMOUNTS, "cosign_above": AMOUNTS | st.none()},
        optional={"extra": ANY_VALUE},
    ),
    max_size=2,
)
PLAUSIBLE = {
    "to": st.sampled_from(DIDS) | st.none(),
    "machine": st.sampled_from(DIDS),
    "did": st.sampled_from(DIDS),
    "asset": st.sampled_from(ASSETS),
    "amount": AMOUNTS,
    "guardrails": st.none()
    | st.fixed_dictionaries(
        {
            "window_blocks": st.sampled_from([0, 1, 10, 2**64]),
            "limits": LIMITS,
            "allowlist": st.none() | st.lists(st.sampled_from(DIDS), max_size=3),
        }
    ),
    "key": st.sampled_from([*PUBLIC_KEYS, SMALL_ORDER_KEY, bytes(32), b"\x01" * 31]),
    "old_key": st.sampled_from(PUBLIC_KEYS),
    "new_key": st.sampled_from([*PUBLIC_KEYS, SMALL_ORDER_KEY]),
    "kind": st.sampled_from(["battery", "meter", "", "x" * 65]),
    "maker": st.text(max_size=8),
    "model": st.text(max_size=8),
    "capabilities": st.lists(st.sampled_from(["trade:energy", "store", ""]), max_size=3),
    "metadata": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    "serial_digest": st.none() | st.binary(min_size=32, max_size=32) | st.binary(max_size=4),
    "actions": st.none() | st.lists(st.sampled_from([*MESSAGE_TYPES, "x", ""]), max_size=3),
    "allowance": st.none() | st.dictionaries(st.sampled_from(ASSETS), AMOUNTS, max_size=2),
}


GOOD_GUARDRAILS = {
    "window_blocks": 10,
    "limits": {"aut": {"per_tx": 100, "per_window": 250, "cosign_above": 60}},
    "allowlist": None,
}
FUNDED = [KEYS.alice.did, KEYS.bob.did, KEYS.carol.did, KEYS.battery.did, KEYS.solar.did]
# Messages that can succeed (for the right sender), so that blocks also apply and change state.
GOOD_MESSAGES = st.one_of(
    st.builds(
        bank_messages.send, st.sampled_from(FUNDED), st.sampled_from(["aut", "kwh"]), st.integers(1, 2000)
    ),
    st.builds(bank_messages.freeze, st.just(KEYS.battery.did)),
    st.builds(bank_messages.unfreeze, st.just(KEYS.battery.did)),
    st.builds(
        bank_messages.set_guardrails, st.just(KEYS.solar.did), st.sampled_from([GOOD_GUARDRAILS, None])
    ),
    st.builds(bank_messages.sweep, st.just(KEYS.solar.did), st.sampled_from([None, KEYS.bob.did])),
    st.just(identity_messages.register(NEWCOMERS[2].did, "meter", "m", "x")),
    st.just(
        identity_messages.add_key(KEYS.alice.did, NEWCOMERS[1].public_key.raw, ["bank/send"], {"aut": 100})
    ),
)


@st.composite
def random_messages(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 2)) == 0:
        return dict(draw(GOOD_MESSAGES))
    kind = draw(st.sampled_from([*MESSAGE_TYPES, *MESSAGE_TYPES, "bank/nothing", "x"]))
    message: dict[str, Any] = {"type": kind}
    for name in FIELDS.get(kind, ()):
        if draw(st.integers(0, 9)) == 0:
            continue  # a missing field
        message[name] = draw(ANY_VALUE if draw(st.integers(0, 9)) == 0 else PLAUSIBLE[name])
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.sampled_from(["extra", *PLAUSIBLE]))] = draw(ANY_VALUE)
    return message


@st.composite
def signed_junk(draw: st.DrawFn, chain: Chain) -> tuple[bytes, str] | None:
    key = draw(st.sampled_from([*_all_keys(), *_all_keys(), NEWCOMERS[0]]))
    cosigners = draw(st.lists(st.sampled_from([KEYS.alice, KEYS.bob, NEWCOMERS[1]]), max_size=2, unique=True))
    cosigners = [cosigner for cosigner in cosigners if cosigner is not key]
    sequence = chain.sequence(key.did) + draw(st.sampled_from([0] * 9 + [1]))
    messages = tuple(draw(st.lists(random_messages(), min_size=1, max_size=2)))
    fee = draw(st.sampled_from([1] * 8 + [2, 0, 2**64 - 1]))
    try:
        tx = sign_tx(TxBody(CHAIN_ID, key.did, sequence, fee, 0, messages), key, cosigners)
    except ValueError:
        return None  # not structurally a transaction (sign_tx refuses to sign it)
    return tx.raw, key.did


@fuzz(400)
@given(st.data())
def test_signed_transactions_with_random_messages(data: st.DataObject) -> None:
    chain = Chain.from_genesis(GENESIS)
    for _ in range(data.draw(st.integers(1, 5))):
        junk = data.draw(signed_junk(chain))
        if junk is None:
            continue
        raw, sender = junk
        check_decode_tx(raw)
        event(check_block(chain, raw, sender=sender))


# --- 5: the data model: round trips, one encoding only, and what cannot be encoded ------------------------

DATA_MODEL = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.binary(max_size=20), st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), children, max_size=5),
    ),
    max_leaves=25,
)


@fuzz(800)
@given(st.one_of(DATA_MODEL, st.integers(min_value=-(2**2000), max_value=2**2000)))
def test_round_trip(value: Any) -> None:
    encoded = canonical_encode(value)
    decoded = canonical_decode(encoded)
    assert decoded == value
    assert canonical_encode(decoded) == encoded  # types kept too (a True never comes back as 1)


def _other_encoding(draw: Callable[[st.SearchStrategy[Any]], Any], value: Any) -> bytes:
    """An encoding of ``value`` with random free choices (head widths, order, lengths, tags)."""
    prefix = b"\xd9\xd9\xf7" if draw(st.integers(0, 30)) == 0 else b""  # the self-describe tag
    kind = type(value)
    if value is None or kind is bool:
        return prefix + canonical_encode(value)
    if kind is int:
        if -(2**64) <= value < 2**64 and draw(st.integers(0, 5)) > 0:
            major, argument = (0, value) if value >= 0 else (1, -1 - value)
            return prefix + bytes(draw(heads(major, argument)))
        magnitude: int = value if value >= 0 else -1 - value
        payload: bytes = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        payload = b"\x00" * draw(st.integers(0, 1)) + payload
        return prefix + (b"\xc2" if value >= 0 else b"\xc3") + bytes(draw(heads(2, len(payload)))) + payload
    if kind is bytes or kind is str:
        major = 2 if kind is bytes else 3
        payload = value if kind is bytes else value.encode("utf-8")
        if draw(st.integers(0, 4)) == 0:
            return prefix + bytes([major << 5 | 31]) + head(major, len(payload)) + bytes(payload) + b"\xff"
        return prefix + bytes(draw(heads(major, len(payload)))) + bytes(payload)
    if kind is list:
        items = b"".join(_other_encoding(draw, item) for item in value)
        if draw(st.integers(0, 4)) == 0:
            return prefix + b"\x9f" + items + b"\xff"
        return prefix + bytes(draw(heads(4, len(value)))) + items
    assert kind is dict
    pairs = [(canonical_encode(key), key, item) for key, item in value.items()]
    pairs.sort(key=lambda pair: (len(pair[0]), pair[0]))
    if draw(st.integers(0, 3)) == 0:
        pairs = draw(st.permutations(pairs))
    body = b"".join(_other_encoding(draw, key) + _other_encoding(draw, item) for _, key, item in pairs)
    if draw(st.integers(0, 4)) == 0:
        return prefix + b"\xbf" + body + b"\xff"
    return prefix + bytes(draw(heads(5, len(value)))) + body


@fuzz(400)
@given(DATA_MODEL, st.data())
def test_only_the_canonical_encoding_is_accepted(value: Any, data: st.DataObject) -> None:
    canonical = canonical_encode(value)
    other = _other_encoding(data.draw, value)
    if other == canonical:
        assert canonical_decode(other) == value
    else:
        with pytest.raises(DecodeError):
            canonical_decode(other)


@fuzz(150)
@given(DATA_MODEL.filter(lambda v: isinstance(v, dict) and len(v) >= 1), st.data())
def test_duplicate_map_keys_are_refused(value: dict[Any, Any], data: st.DataObject) -> None:
    pairs = [(canonical_encode(key), canonical_encode(item)) for key, item in value.items()]
    pairs.sort()
    pairs.sort(key=lambda pair: len(pair[0]))
    duplicate = data.draw(st.sampled_from(pairs))
    other_value = canonical_encode(data.draw(DATA_MODEL))
    pairs.insert(pairs.index(duplicate) + 1, (duplicate[0], other_value))
    encoded = head(5, len(pairs)) + b"".join(key + item for key, item in pairs)
    with pytest.raises(DecodeError):
        canonical_decode(encoded)


NOT_IN_THE_MODEL = st.one_of(
    st.floats(allow_nan=True),
    st.sets(st.integers(), max_size=3),
    st.frozensets(st.integers(), max_size=3),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(object),
    st.complex_numbers(),
    st.dictionaries(st.binary(min_size=1, max_size=3), st.integers(), min_size=1, max_size=2),
    st.dictionaries(st.tuples(st.integers()), st.integers(), min_size=1, max_size=2),
    st.just(Ellipsis),
)


@fuzz(500)
@given(NOT_IN_THE_MODEL, st.sampled_from(["bare", "in a list", "in a map", "deep"]))
def test_encoding_refuses_values_outside_the_model(value: Any, where: str) -> None:
    wrapped = {
        "bare": value,
        "in a list": [1, value],
        "in a map": {"a": [value]},
        "deep": [[[{"x": value}]]],
    }[where]
    with pytest.raises(TypeError):
        canonical_encode(wrapped)


def test_nesting_is_bounded_both_ways() -> None:
    deepest: Any = 0
    for _ in range(MAX_DEPTH):
        deepest = [deepest]
    assert canonical_decode(canonical_encode(deepest)) == deepest
    too_deep = [deepest]
    with pytest.raises(TypeError):
        canonical_encode(too_deep)
    with pytest.raises(DecodeError):
        canonical_decode(b"\x81" * (MAX_DEPTH + 1) + b"\x00")
    with pytest.raises(DecodeError):
        canonical_decode(b"\x81" * 100_000 + b"\x00")


@pytest.mark.parametrize(
    "data",
    [
        b"\xc5\x9f\x1a\x002\xb0I\xf4\xff",  # a bigfloat whose exponent overflows decimal (found by fuzzing)
        b"\xc4\x82\x1b\x7f\xff\xff\xff\xff\xff\xff\xff\x01",  # a decimal fraction with a huge exponent
    ],
)
def test_semantic_tags_that_overflow_are_typed_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        canonical_decode(data)
    check_everything(data)
