"""Golden values of the state commitment: the roots and proof bytes every replica must reproduce.

These literals were computed once from the implementation and written here. If one changes, the
state root of every block changes: that is a consensus break, never a refactoring.
"""

from __future__ import annotations

import pytest

from autarky.ledger.smt import EMPTY_ROOT, Proof, SparseMerkleTree, key_path, verify

THREE = {"alice": b"\x01", "bob": b"\x02", "carol": b"\x03"}
HUNDRED = {f"key-{number}": f"value-{number}".encode() for number in range(100)}

GOLDEN_ROOTS = [
    ({}, "00" * 32),
    ({"a": b"1"}, "48ef950a6c6af1889f34db8703f16dbdc2578b3452983f5c794f8c52b8571f26"),
    (THREE, "1d57f808f5eb6c6915a6360e195f632c915abd736cf233a5d9ecc5bb38f34fc5"),
    (
        {"zürich/meter-1": b"", "bank/bal/did:key:z6Mk/uatk": b"\xa1\x61\x61\x01"},
        "85cf8cc0b3ca055670b0c8f7272198cb0ca4512ff61c18be80507f7ac60f13dd",
    ),
    (HUNDRED, "3959e0920f80e70f1c8edc1c4ae0e7023a5267f09f52c1e8b37ee4f75a671369"),
]


@pytest.mark.parametrize(("items", "root_hex"), GOLDEN_ROOTS)
def test_golden_roots(items: dict[str, bytes], root_hex: str) -> None:
    assert SparseMerkleTree.from_items(items.items()).root.hex() == root_hex
    assert SparseMerkleTree.empty().update(sorted(items.items(), reverse=True)).root.hex() == root_hex


def test_golden_key_path() -> None:
    assert EMPTY_ROOT.hex() == "00" * 32
    assert key_path("alice").hex() == "9bf0d92fec95651033a6bfa84047709fd4e2c9e1ccc5e77ec6222f9914398abe"


GOLDEN_PROOFS = [
    # Inclusion of "alice" in THREE.
    (
        THREE,
        "alice",
        b"\x01",
        "8558209bf0d92fec95651033a6bfa84047709fd4e2c9e1ccc5e77ec6222f9914398abe014180815820cc7f3dc161e8b7"
        "a96e88c89a2f9a2ab066b0e628ba07ab153cc848f305e9b1a0f6",
    ),
    # Exclusion of "dave" from THREE: the search ends at another key's leaf.
    (
        THREE,
        "dave",
        None,
        "855820134662b3fdcc6359aaf9f9e7fb33d56ce7cf733b131a54c12a71cbdaeb791aaa0241c0825820ce99cb113db1f0"
        "4041e949801d6fdb4d66b7e6e41be8ca16cdee45d52f2fc0f85820c279d84cbadad637880cb83084592cc3a96c70d964"
        "87f844428ed9393ecc3d448258203355d43a24bf0f96bceb66c805a15aa329d9b0e5f49e89003495a96531cf990b5820"
        "084fed08b978af4d7d196a7446a86b58009e636b611db16211b65a9aadff29c5",
    ),
    # Exclusion of "absent-8" from HUNDRED: the search ends at an empty subtree.
    (
        HUNDRED,
        "absent-8",
        None,
        "855820203ba58da69e7361b508e92c3ed5144e4ab302753061d98e729bde5397224e570741fe875820d3832a3bc1d359"
        "377dbabd0539a51a2ffb346412660facb07866529621b3acd95820404139d7932add0515557f26e21986a283088d6b0c"
        "dd00da1bbec4c926c061d8582041d0bca62c9a26ed8869c1bd26e83d4414eac4ad652fd58e97d04ed1c91bfad358202b"
        "d52dfd80ef2845c947c453dac2a023c3a8a4b515baa46605a3847cb33d94a558205c2b6dcc0cea8ece59f662a9f3c7ff"
        "56de717a2324c92b6433aedd1de0e82d645820bc1ed9aa60db83232988fc65bc311ba16a86f0082ccac9a2707919b596"
        "7b1fa858208972a141e461149e6d8b5e5adc50941921cd11e5d40853dd155dfac32b3c1462f6",
    ),
]


@pytest.mark.parametrize(("items", "key", "value", "proof_hex"), GOLDEN_PROOFS)
def test_golden_proofs(items: dict[str, bytes], key: str, value: bytes | None, proof_hex: str) -> None:
    tree = SparseMerkleTree.from_items(items.items())
    proof = tree.prove(key)
    assert proof.encode().hex() == proof_hex
    assert verify(tree.root, key, value, Proof.decode(bytes.fromhex(proof_hex)))
