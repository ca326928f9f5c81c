"""The state commitment (``autarky.ledger.smt``): hashing rules, tree shape, proofs and tampering."""

from __future__ import annotations

import dataclasses
import gc
import sys
from itertools import count

import pytest

from autarky.crypto.hashing import sha256
from autarky.ledger.smt import (
    EMPTY_ROOT,
    InvalidProof,
    Proof,
    SparseMerkleTree,
    key_path,
    verify,
    verify_exclusion,
    verify_inclusion,
)

# The hashing rules, written out from the design (not imported from the module under test).


def path_of(key: str) -> bytes:
    return sha256(b"autarky/smt/key\x00" + key.encode("utf-8"))


def leaf(key: str, value: bytes) -> bytes:
    return sha256(b"\x00" + path_of(key) + sha256(value))


def internal(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def bit(path: bytes, depth: int) -> int:
    return (path[depth // 8] >> (7 - depth % 8)) & 1


def common_prefix_bits(first: bytes, second: bytes) -> int:
    depth = 0
    while depth < 256 and bit(first, depth) == bit(second, depth):
        depth += 1
    return depth


def keys_sharing_prefix(bits: int) -> tuple[str, str]:
    """The first two keys ``pair-<n>`` (in n order) whose paths share at least ``bits`` leading bits."""
    seen: dict[int, str] = {}
    for number in count():
        key = f"pair-{number}"
        prefix = int.from_bytes(path_of(key), "big") >> (256 - bits)
        if prefix in seen:
            return seen[prefix], key
        seen[prefix] = key
    raise AssertionError("unreachable")


def tree_of(items: dict[str, bytes]) -> SparseMerkleTree:
    return SparseMerkleTree.empty().update(sorted(items.items()))


SAMPLE = {f"machine-{number}": f"balance {number}".encode() for number in range(40)}


def absent_keys_by_shape(tree: SparseMerkleTree) -> tuple[str, str]:
    """An absent key whose search ends at an empty subtree, and one whose search ends at another leaf."""
    at_empty = at_leaf = None
    for number in count():
        key = f"absent-{number}"
        proof = tree.prove(key)
        if proof.other_leaf is None and at_empty is None:
            at_empty = key
        if proof.other_leaf is not None and at_leaf is None:
            at_leaf = key
        if at_empty is not None and at_leaf is not None:
            return at_empty, at_leaf
    raise AssertionError("unreachable")


# Shape and roots


def test_empty_tree() -> None:
    tree = SparseMerkleTree.empty()
    assert bytes(32) == EMPTY_ROOT
    assert tree.root == EMPTY_ROOT
    assert len(tree) == 0
    assert tree.value_hash("anything") is None
    assert tree.update([]) is tree
    assert tree.update([("never-set", None)]).root == EMPTY_ROOT
    assert SparseMerkleTree.from_items([]).root == EMPTY_ROOT


def test_key_path_is_domain_separated_sha256() -> None:
    assert key_path("bank/bal/x") == path_of("bank/bal/x")
    assert key_path("zürich") == sha256(b"autarky/smt/key\x00" + "zürich".encode())


def test_single_key_root_is_its_leaf() -> None:
    tree = SparseMerkleTree.empty().update([("alice", b"100")])
    assert tree.root == leaf("alice", b"100")
    assert len(tree) == 1
    assert tree.value_hash("alice") == sha256(b"100")
    assert tree.value_hash("bob") is None


def test_two_keys_sharing_a_long_prefix() -> None:
    first, second = keys_sharing_prefix(12)
    shared = common_prefix_bits(path_of(first), path_of(second))
    assert shared >= 12
    if bit(path_of(first), shared):
        first, second = second, first
    # The node that separates them sits at depth ``shared``; above it, every node has one empty child.
    expected = internal(leaf(first, b"1"), leaf(second, b"2"))
    for depth in range(shared - 1, -1, -1):
        expected = (
            internal(EMPTY_ROOT, expected) if bit(path_of(first), depth) else internal(expected, EMPTY_ROOT)
        )
    tree = SparseMerkleTree.empty().update([(first, b"1"), (second, b"2")])
    assert tree.root == expected
    assert len(tree) == 2

    proof = tree.prove(first)
    assert proof.depth == shared + 1
    assert proof.siblings == (leaf(second, b"2"),)  # only the last sibling is non-empty
    assert verify_inclusion(tree.root, first, b"1", proof)
    assert len(proof.encode()) < 150

    # Deleting one key moves the other back up to the root.
    assert tree.update([(second, None)]).root == leaf(first, b"1")


def test_three_keys_by_hand() -> None:
    items = {"a": b"1", "b": b"2", "c": b"3"}
    paths = {key: path_of(key) for key in items}

    def expected(keys: list[str], depth: int) -> bytes:
        if not keys:
            return EMPTY_ROOT
        if len(keys) == 1:
            return leaf(keys[0], items[keys[0]])
        left = [key for key in keys if not bit(paths[key], depth)]
        right = [key for key in keys if bit(paths[key], depth)]
        return internal(expected(left, depth + 1), expected(right, depth + 1))

    assert tree_of(items).root == expected(sorted(items), 0)


def test_delete_back_to_empty() -> None:
    tree = tree_of(SAMPLE)
    assert len(tree) == len(SAMPLE)
    emptied = tree.update([(key, None) for key in sorted(SAMPLE)])
    assert emptied.root == EMPTY_ROOT
    assert len(emptied) == 0
    assert tree.root == tree_of(SAMPLE).root  # the old snapshot is untouched


def test_deleting_absent_keys_and_rewriting_values_change_nothing() -> None:
    tree = tree_of(SAMPLE)
    assert tree.update([("not-there", None)]) is tree
    assert tree.update([("machine-3", SAMPLE["machine-3"])]) is tree
    unchanged = tree.update([("not-there", None), ("nor-this", None), ("machine-3", SAMPLE["machine-3"])])
    assert unchanged.root == tree.root


def test_root_does_not_depend_on_update_order_or_batching() -> None:
    keys = sorted(SAMPLE)
    one_batch = tree_of(SAMPLE)
    one_by_one = SparseMerkleTree.empty()
    for key in reversed(keys):
        one_by_one = one_by_one.update([(key, SAMPLE[key])])
    assert one_by_one.root == one_batch.root
    assert SparseMerkleTree.from_items(SAMPLE.items()).root == one_batch.root
    # Insert extra keys, then delete them again: the root comes back.
    extra = [(f"extra-{number}", b"x") for number in range(25)]
    round_trip = one_batch.update(extra).update([(key, None) for key, _ in extra])
    assert round_trip.root == one_batch.root


def test_value_hash_and_len_follow_updates() -> None:
    tree = tree_of(SAMPLE).update([("machine-1", b"new"), ("machine-2", None), ("machine-99", b"")])
    assert tree.value_hash("machine-1") == sha256(b"new")
    assert tree.value_hash("machine-2") is None
    assert tree.value_hash("machine-99") == sha256(b"")
    assert len(tree) == len(SAMPLE)


def test_the_same_key_twice_in_one_batch_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        SparseMerkleTree.empty().update([("a", b"1"), ("a", b"2")])


# Proofs


def test_inclusion_proofs_for_every_key() -> None:
    tree = tree_of(SAMPLE)
    for key, value in sorted(SAMPLE.items()):
        proof = tree.prove(key)
        assert proof.other_leaf is None
        assert proof.path == path_of(key)
        assert verify_inclusion(tree.root, key, value, proof)
        assert verify(tree.root, key, value, proof)
        assert not verify_exclusion(tree.root, key, proof)
        assert not verify_inclusion(tree.root, key, value + b"!", proof)


def test_exclusion_proof_ending_at_an_empty_subtree() -> None:
    tree = tree_of(SAMPLE)
    key, _ = absent_keys_by_shape(tree)
    proof = tree.prove(key)
    assert proof.other_leaf is None
    assert verify_exclusion(tree.root, key, proof)
    assert verify(tree.root, key, None, proof)
    assert not verify_inclusion(tree.root, key, b"", proof)
    # An empty-subtree proof for a key that is present must fail.
    present = tree.update([(key, b"now here")])
    assert not verify_exclusion(present.root, key, proof)


def test_exclusion_proof_ending_at_another_leaf() -> None:
    tree = tree_of(SAMPLE)
    _, key = absent_keys_by_shape(tree)
    proof = tree.prove(key)
    assert proof.other_leaf is not None
    other_path, _ = proof.other_leaf
    assert other_path != path_of(key)
    assert common_prefix_bits(other_path, path_of(key)) >= proof.depth
    assert verify_exclusion(tree.root, key, proof)
    assert not verify_inclusion(tree.root, key, b"", proof)


def test_proofs_in_empty_and_single_key_trees() -> None:
    empty = SparseMerkleTree.empty()
    proof = empty.prove("x")
    assert (proof.depth, proof.bitmap, proof.siblings, proof.other_leaf) == (0, b"", (), None)
    assert verify_exclusion(EMPTY_ROOT, "x", proof)
    single = empty.update([("x", b"1")])
    assert verify_inclusion(single.root, "x", b"1", single.prove("x"))
    other = single.prove("y")
    assert other.other_leaf == (path_of("x"), sha256(b"1"))
    assert verify_exclusion(single.root, "y", other)


def test_encoding_round_trip_and_json() -> None:
    tree = tree_of(SAMPLE)
    at_empty, at_leaf = absent_keys_by_shape(tree)
    for key in ("machine-7", at_empty, at_leaf):
        proof = tree.prove(key)
        encoded = proof.encode()
        assert Proof.decode(encoded) == proof
        assert Proof.decode(encoded).encode() == encoded
        as_json = proof.to_json()
        assert as_json["path"] == path_of(key).hex()
        assert as_json["depth"] == proof.depth
        assert as_json["siblings"] == [sibling.hex() for sibling in proof.siblings]
        if proof.other_leaf is None:
            assert as_json["other_leaf"] is None
        else:
            assert as_json["other_leaf"] == {
                "path": proof.other_leaf[0].hex(),
                "value_hash": proof.other_leaf[1].hex(),
            }


# Tampering: a verifier trusts nothing in a proof


def flip(data: bytes, byte_index: int = 0) -> bytes:
    return data[:byte_index] + bytes([data[byte_index] ^ 0x01]) + data[byte_index + 1 :]


def test_tampered_inclusion_proofs_fail() -> None:
    tree = tree_of(SAMPLE)
    root = tree.root
    proof = tree.prove("machine-5")
    assert verify_inclusion(root, "machine-5", SAMPLE["machine-5"], proof)
    for index in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[index] = flip(siblings[index], index % 32)
        forged = dataclasses.replace(proof, siblings=tuple(siblings))
        assert not verify_inclusion(root, "machine-5", SAMPLE["machine-5"], forged)
    assert not verify_inclusion(root, "machine-5", b"wrong value", proof)
    assert not verify_inclusion(root, "machine-6", SAMPLE["machine-5"], proof)  # wrong key
    assert not verify_inclusion(root, "machine-6", SAMPLE["machine-6"], proof)
    assert not verify_inclusion(flip(root), "machine-5", SAMPLE["machine-5"], proof)
    # A proof that claims a different depth, or drops a sibling, does not reach the root.
    for depth in range(proof.depth):
        bitmap = _bitmap(proof, depth)
        listed = sum(byte.bit_count() for byte in bitmap)
        shallower = dataclasses.replace(proof, depth=depth, bitmap=bitmap, siblings=proof.siblings[:listed])
        assert not verify_inclusion(root, "machine-5", SAMPLE["machine-5"], shallower)
    # Claiming the other leaf of an inclusion proof turns it into nothing valid.
    as_exclusion = dataclasses.replace(proof, other_leaf=(path_of("machine-6"), sha256(SAMPLE["machine-6"])))
    assert not verify_exclusion(root, "machine-5", as_exclusion)
    assert not verify_inclusion(root, "machine-5", SAMPLE["machine-5"], as_exclusion)


def _bitmap(proof: Proof, depth: int) -> bytes:
    """``proof.bitmap`` cut to its first ``depth`` levels."""
    bits = bytearray((depth + 7) // 8)
    for level in range(depth):
        if bit(proof.bitmap, level):
            bits[level // 8] |= 0x80 >> (level % 8)
    return bytes(bits)


def test_tampered_exclusion_proofs_fail() -> None:
    tree = tree_of(SAMPLE)
    root = tree.root
    at_empty, at_leaf = absent_keys_by_shape(tree)
    empty_proof = tree.prove(at_empty)
    leaf_proof = tree.prove(at_leaf)
    assert leaf_proof.other_leaf is not None
    other_path, other_value_hash = leaf_proof.other_leaf
    assert not verify_exclusion(root, at_leaf, dataclasses.replace(leaf_proof, other_leaf=None))
    assert not verify_exclusion(
        root, at_leaf, dataclasses.replace(leaf_proof, other_leaf=(other_path, flip(other_value_hash)))
    )
    # The other leaf may not be the key itself, nor a leaf off the key's path.
    assert not verify_exclusion(
        root, at_leaf, dataclasses.replace(leaf_proof, other_leaf=(path_of(at_leaf), other_value_hash))
    )
    assert not verify_exclusion(root, at_empty, leaf_proof)  # proof for another key
    assert not verify_exclusion(root, at_leaf, empty_proof)
    if empty_proof.siblings:
        siblings = (flip(empty_proof.siblings[0]), *empty_proof.siblings[1:])
        assert not verify_exclusion(root, at_empty, dataclasses.replace(empty_proof, siblings=siblings))
    # A present key cannot be proved absent with a proof made for it in an older tree.
    later = tree.update([(at_leaf, b"arrived")])
    assert not verify_exclusion(later.root, at_leaf, leaf_proof)
    assert verify_inclusion(later.root, at_leaf, b"arrived", later.prove(at_leaf))


def test_exclusion_needs_the_other_leaf_on_the_keys_path() -> None:
    # Hand-made one-level "trees" with a lone leaf beside an empty subtree (never canonical, but a
    # verifier must not care): the leaf stands at the key's position, so only its path decides.
    key = "k"
    path = path_of(key)
    on_path = next(f"o{n}" for n in count() if bit(path_of(f"o{n}"), 0) == bit(path, 0))
    off_path = next(f"o{n}" for n in count() if bit(path_of(f"o{n}"), 0) != bit(path, 0))
    for other, expected in ((on_path, True), (off_path, False)):
        proof = Proof(path, 1, b"\x00", (), (path_of(other), sha256(b"v")))
        lone = leaf(other, b"v")
        root = internal(EMPTY_ROOT, lone) if bit(path, 0) else internal(lone, EMPTY_ROOT)
        assert verify_exclusion(root, key, proof) is expected


def test_verify_answers_false_for_nonsense_arguments() -> None:
    tree = tree_of(SAMPLE)
    proof = tree.prove("machine-1")
    value = SAMPLE["machine-1"]
    assert not verify_inclusion(tree.root[:31], "machine-1", value, proof)
    assert not verify_inclusion("not bytes", "machine-1", value, proof)  # type: ignore[arg-type]
    assert not verify_inclusion(tree.root, b"machine-1", value, proof)  # type: ignore[arg-type]
    assert not verify_inclusion(tree.root, "machine-1", "value", proof)  # type: ignore[arg-type]
    assert not verify_inclusion(tree.root, "machine-1", value, proof.encode())  # type: ignore[arg-type]
    assert not verify_exclusion(tree.root, "machine-1", None)  # type: ignore[arg-type]
    assert not verify(tree.root, "machine-1", None, proof)


def test_truncated_and_garbage_encodings_raise_invalid_proof() -> None:
    tree = tree_of(SAMPLE)
    encoded = tree.prove("machine-9").encode()
    for length in range(len(encoded)):
        with pytest.raises(InvalidProof):
            Proof.decode(encoded[:length])
    for garbage in (b"", b"\x00", b"\xff" * 40, b"garbage bytes", encoded + b"\x00", "text", None, 7):
        with pytest.raises(InvalidProof):
            Proof.decode(garbage)  # type: ignore[arg-type]


def test_malformed_proof_structures_raise_invalid_proof() -> None:
    from autarky.encoding import canonical_encode

    path = path_of("k")
    sibling = sha256(b"s")
    good = [path, 1, b"\x80", [sibling], None]
    assert Proof.decode(canonical_encode(good)).siblings == (sibling,)
    bad_documents = [
        {"path": path},
        good[:4],
        [*good, None],
        [path[:31], 1, b"\x80", [sibling], None],  # short path
        [path, -1, b"", [], None],  # negative depth
        [path, 257, bytes(33), [], None],  # deeper than a path
        [path, True, b"\x80", [sibling], None],  # bool is not a depth
        [path, 1, b"\x80\x00", [sibling], None],  # bitmap longer than the depth needs
        [path, 1, b"\xc0", [sibling], None],  # padding bit set
        [path, 1, b"\x80", [], None],  # bitmap says one sibling, none given
        [path, 1, b"\x00", [sibling], None],  # sibling given, bitmap says empty
        [path, 1, b"\x80", [EMPTY_ROOT], None],  # an empty sibling listed as non-empty
        [path, 1, b"\x80", [sibling[:31]], None],
        [path, 1, b"\x80", sibling, None],  # siblings not a list
        [path, 1, b"\x80", [sibling], [path]],  # other leaf with one field
        [path, 1, b"\x80", [sibling], [path, "hash"]],
        [path, 1, b"\x80", [sibling], b"leaf"],
    ]
    for document in bad_documents:
        with pytest.raises(InvalidProof):
            Proof.decode(canonical_encode(document))
    with pytest.raises(InvalidProof):
        Proof(path, 1, b"\x80", (sibling, sibling))


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="about CPython's cycle collector")
def test_the_cycle_collector_stops_tracking_fresh_nodes_in_one_pass() -> None:
    # Performance, not correctness: if fresh nodes stayed tracked, full collections over a large
    # state would take hundreds of milliseconds (see SparseMerkleTree._recent).
    def tracked_nodes(tree: SparseMerkleTree) -> int:
        stack = [tree._root]
        tracked = 0
        while stack:
            node = stack.pop()
            if node is None:
                continue
            tracked += gc.is_tracked(node)
            if len(node) == 4:
                stack.extend((node[1], node[2]))
        return tracked

    gc.collect()
    gc.disable()  # so that the single pass below is the first one to see the nodes
    try:
        built = SparseMerkleTree.from_items((f"k{number}", b"v") for number in range(3000))
        updated = built.update([(f"k{number}", b"w") for number in range(0, 3000, 7)])
        assert tracked_nodes(built) > 1000
        gc.collect()
    finally:
        gc.enable()
    assert tracked_nodes(built) <= 1
    assert tracked_nodes(updated) <= 1


def test_proof_size_bound_with_100k_keys() -> None:
    tree = SparseMerkleTree.from_items(
        (f"bank/bal/acct-{number:06d}", b"v%d" % number) for number in range(100_000)
    )
    assert len(tree) == 100_000
    largest = 0
    for number in range(0, 200_000, 199):  # about 500 present and 500 absent keys
        key = f"bank/bal/acct-{number:06d}"
        proof = tree.prove(key)
        largest = max(largest, len(proof.encode()))
        value = b"v%d" % number if number < 100_000 else None
        assert verify(tree.root, key, value, proof)
    assert largest <= 1536
