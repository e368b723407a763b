"""RFC 6962 known-answer vectors from an independent implementation, for the T-01 tests.

Copied verbatim (hex) from the Go module github.com/transparency-dev/merkle (Apache-2.0):

- ``proof/verify_test.go`` at commit 02194e9afb6c1d95b5381350007963aa70fff472: ``leaves``, ``roots``,
  ``inclusionProofs``, ``consistencyProofs``, ``sha256SomeHash`` and ``sha256EmptyTreeHash``;
- ``rfc6962/rfc6962_test.go`` at commit 78493b07ef9b552e3379abf9e23d4da26fbe797c: the hasher vectors.

The same eight leaves and roots appear in google/certificate-transparency and google/trillian. Indices in
the Go file are 1-based leaf numbers (``leaf``); here they are converted to 0-based leaf indices.
"""

from __future__ import annotations

from typing import NamedTuple


def _h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


class HasherVector(NamedTuple):
    description: str
    kind: str  # "empty", "leaf" or "node"
    inputs: tuple[bytes, ...]
    expected: bytes


class InclusionVector(NamedTuple):
    index: int  # 0-based leaf index
    tree_size: int
    proof: tuple[bytes, ...]


class ConsistencyVector(NamedTuple):
    old_size: int
    new_size: int
    proof: tuple[bytes, ...]


HASHER_VECTORS = (
    HasherVector("RFC6962 Empty", "empty", (), _h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
    HasherVector(
        "RFC6962 Empty Leaf",
        "leaf",
        (b"",),
        _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    ),
    HasherVector(
        "RFC6962 Leaf",
        "leaf",
        (b"L123456",),
        _h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
    ),
    HasherVector(
        "RFC6962 Node",
        "node",
        (b"N123", b"N456"),
        _h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"),
    ),
)

SOME_HASH = _h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_TREE_HASH = _h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

LEAVES = (
    _h(""),
    _h("00"),
    _h("10"),
    _h("2021"),
    _h("3031"),
    _h("40414243"),
    _h("5051525354555657"),
    _h("606162636465666768696a6b6c6d6e6f"),
)

# ROOTS[i] is the root of the tree made of the first i + 1 leaves.
ROOTS = (
    _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    _h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    _h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    _h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    _h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    _h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
)

# The Go table's first entry {0, 0, nil} is its "invalid path" placeholder and is not a vector.
INCLUSION_VECTORS = (
    InclusionVector(0, 1, ()),
    InclusionVector(
        0,
        8,
        (
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ),
    ),
    InclusionVector(
        5,
        8,
        (
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ),
    ),
    InclusionVector(
        2,
        3,
        (_h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),),
    ),
    InclusionVector(
        1,
        5,
        (
            _h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ),
    ),
)

CONSISTENCY_VECTORS = (
    ConsistencyVector(1, 1, ()),
    ConsistencyVector(
        1,
        8,
        (
            _h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ),
    ),
    ConsistencyVector(
        6,
        8,
        (
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ),
    ),
    ConsistencyVector(
        2,
        5,
        (
            _h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            _h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ),
    ),
    ConsistencyVector(
        6,
        7,
        (
            _h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            _h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            _h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ),
    ),
)
