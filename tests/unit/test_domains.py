"""R5: domain separation. A signature means one thing: one purpose, and for chain-bound purposes one chain."""

from __future__ import annotations

import itertools

import pytest

from autarky.crypto.domains import Domain, check_chain_id, domain_tag
from autarky.crypto.keys import SigningKey, verify_raw

PER_CHAIN = (Domain.TRANSACTION, Domain.BLOCK_HEADER, Domain.VOTE, Domain.CUT)
UNBOUND = tuple(domain for domain in Domain if domain not in PER_CHAIN)

# Chain ids chosen to be prefixes of one another and to look like the tag kinds.
CHAIN_IDS = ["a", "b", "ab", "a-b", "a0", "0", "main", "mainnet", "main-net", "tx", "msg", "v1", "x" * 63]

PAYLOAD = b"\xa2dfrome12345bto\x01"  # opaque bytes: the tag alone must keep the meanings apart


def _contexts() -> list[tuple[Domain, str | None]]:
    """Every signing context: each chain-bound domain on each chain id, and each unbound domain."""
    bound = [(domain, chain) for domain in PER_CHAIN for chain in CHAIN_IDS]
    return [*bound, *((domain, None) for domain in UNBOUND)]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.from_seed(b"\x42" * 32)


def test_transaction_signature_is_only_a_transaction_on_its_chain(key: SigningKey) -> None:
    signature = key.sign(Domain.TRANSACTION, PAYLOAD, chain_id="a")
    public = key.public_key
    assert public.verify(Domain.TRANSACTION, PAYLOAD, signature, chain_id="a")
    assert not public.verify(Domain.TRANSACTION, PAYLOAD, signature, chain_id="b")
    assert not public.verify(Domain.MESSAGE, PAYLOAD, signature)
    for chain in ("a", "b"):
        assert not public.verify(Domain.BLOCK_HEADER, PAYLOAD, signature, chain_id=chain)
        assert not public.verify(Domain.VOTE, PAYLOAD, signature, chain_id=chain)
        assert not public.verify(Domain.CUT, PAYLOAD, signature, chain_id=chain)


def test_nothing_else_is_ever_a_transaction(key: SigningKey) -> None:
    public = key.public_key
    for domain, chain in _contexts():
        if domain is Domain.TRANSACTION and chain == "a":
            continue
        signature = key.sign(domain, PAYLOAD, chain_id=chain)
        assert not public.verify(Domain.TRANSACTION, PAYLOAD, signature, chain_id="a"), (domain, chain)


def test_every_context_verifies_only_in_itself(key: SigningKey) -> None:
    public = key.public_key
    contexts = _contexts()
    for signed_in in contexts:
        signature = key.sign(signed_in[0], PAYLOAD, chain_id=signed_in[1])
        for checked_in in contexts:
            verifies = public.verify(checked_in[0], PAYLOAD, signature, chain_id=checked_in[1])
            assert verifies == (signed_in == checked_in), (signed_in, checked_in)


def test_an_attestation_signature_is_nothing_else_and_nothing_else_is_one(key: SigningKey) -> None:
    """An issuer's claim signature (``Domain.ATTESTATION``) is never a transaction, header, vote, cut,
    message or keystore signature on any chain, and none of those is ever a claim signature."""
    public = key.public_key
    claim_signature = key.sign(Domain.ATTESTATION, PAYLOAD)
    assert public.verify(Domain.ATTESTATION, PAYLOAD, claim_signature)
    for domain, chain in _contexts():
        if domain is Domain.ATTESTATION:
            continue
        assert not public.verify(domain, PAYLOAD, claim_signature, chain_id=chain), (domain, chain)
        other = key.sign(domain, PAYLOAD, chain_id=chain)
        assert not public.verify(Domain.ATTESTATION, PAYLOAD, other), (domain, chain)


def test_the_attestation_tag_is_not_bound_to_a_chain() -> None:
    assert domain_tag(Domain.ATTESTATION) == b"AUTARKY-ATTEST-V1\x00"
    assert Domain.ATTESTATION in UNBOUND
    with pytest.raises(ValueError):
        domain_tag(Domain.ATTESTATION, "main")


def test_signatures_cover_the_tag(key: SigningKey) -> None:
    """The signature is over ``tag || payload``: never over the bare payload."""
    signature = key.sign(Domain.MESSAGE, PAYLOAD)
    assert verify_raw(key.public_key.raw, domain_tag(Domain.MESSAGE) + PAYLOAD, signature)
    assert not verify_raw(key.public_key.raw, PAYLOAD, signature)


def test_tags_are_prefix_free() -> None:
    """No tag is a prefix of another, so ``tag || payload`` can be read under one tag only."""
    tags = {domain_tag(domain, chain): (domain, chain) for domain, chain in _contexts()}
    assert len(tags) == len(_contexts()), "two contexts share a tag"
    clashes = [
        (tags[first], tags[second])
        for first, second in itertools.permutations(tags, 2)
        if second.startswith(first)
    ]
    assert clashes == []


def test_tag_shape() -> None:
    assert domain_tag(Domain.MESSAGE) == b"AUTARKY-MSG-V1\x00"
    assert domain_tag(Domain.TRANSACTION, "main") == b"AUTARKY-TX-V1\x00main\x00"
    for domain, chain in _contexts():
        assert domain_tag(domain, chain).startswith(b"AUTARKY-")
        assert domain_tag(domain, chain).endswith(b"\x00")


BAD_CHAIN_IDS = ["", "A", "Main", "a_b", "a\x00", "\x00", "a\x00b", "x" * 64, "-a", "a\n", "a b", "a.b"]


@pytest.mark.parametrize("chain_id", [*BAD_CHAIN_IDS, "caf\u00e9", "\u0430"])  # Latin é, Cyrillic а
def test_bad_chain_ids_are_refused(chain_id: str) -> None:
    with pytest.raises(ValueError):
        check_chain_id(chain_id)
    for domain in PER_CHAIN:
        with pytest.raises(ValueError):
            domain_tag(domain, chain_id)


def test_good_chain_ids_are_accepted() -> None:
    for chain_id in CHAIN_IDS:
        assert check_chain_id(chain_id) == chain_id


@pytest.mark.parametrize("chain_id", [None, 7, b"main"])
def test_chain_id_must_be_a_string(chain_id: object) -> None:
    with pytest.raises(ValueError):
        check_chain_id(chain_id)  # type: ignore[arg-type]


def test_chain_bound_domains_need_a_chain_and_others_refuse_one() -> None:
    for domain in PER_CHAIN:
        with pytest.raises(ValueError):
            domain_tag(domain)
    for domain in UNBOUND:
        with pytest.raises(ValueError):
            domain_tag(domain, "main")
