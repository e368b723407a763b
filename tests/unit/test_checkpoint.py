"""Tests for signed checkpoints (gateway.audit.checkpoint): C2SP signed notes with Ed25519 keys.

Known answers come from golang.org/x/mod/sumdb/note (note_test.go and the package documentation in
note.go, github.com/golang/mod): its PeterNeumann signer key, its verifier keys and its signed notes, which
use the same signed-note format and Ed25519 key IDs as c2sp.org/signed-note. privacy.md T-05 forked checkpoint,
T-06 wrong or unknown signing key, T-07 key rotation (the stored-log versions are in
tests/integration/test_audit_tamper.py).
"""

from __future__ import annotations

import base64

import pytest

from gateway.audit.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    InconsistentCheckpointError,
    KeyFormatError,
    SigningKey,
    VerifierKey,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint_consistency,
)
from gateway.audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes

# --- golang.org/x/mod/sumdb/note known answers ---
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

ORIGIN = "quartieri.example/audit"


def _tree(count: int, tag: str = "") -> list[bytes]:
    return [leaf_hash(f'{{"record":{i}{tag}}}'.encode()) for i in range(count)]


def _checkpoint(hashes: list[bytes]) -> Checkpoint:
    return Checkpoint(ORIGIN, len(hashes), root_from_leaf_hashes(hashes))


# --- independent known answers ---


def test_signer_and_verifier_keys_match_go_sumdb_note() -> None:
    key = SigningKey.parse(GO_SKEY)
    assert key.name == "PeterNeumann"
    assert key.key_id.hex() == "c74f20a3"
    assert key.verifier.to_text() == GO_PETER_VKEY
    assert key.verifier == VerifierKey.parse(GO_PETER_VKEY)
    assert key.to_text() == GO_SKEY
    assert VerifierKey.parse(GO_ENOCH_VKEY).key_id.hex() == "af0cfe78"


def test_signed_note_matches_go_sumdb_note_byte_for_byte() -> None:
    # Ed25519 is deterministic, so signing Go's text with Go's key must give Go's note exactly.
    assert sign_note(GO_TEXT, SigningKey.parse(GO_SKEY)) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_signed_notes_open() -> None:
    peter, enoch = VerifierKey.parse(GO_PETER_VKEY), VerifierKey.parse(GO_ENOCH_VKEY)
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG

    opened = open_note(note, [peter])
    assert opened.text == GO_TEXT
    assert opened.verified_by == (peter,)  # Enoch's signature is from an unknown key: ignored

    assert open_note(note.encode(), [peter, enoch]).verified_by == (peter, enoch)
    assert open_note(GO_TEXT + "\n" + GO_ENOCH_SIG, [enoch, peter, enoch]).verified_by == (enoch,)

    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_note(note, [])

    corrupted = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(CheckpointError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(corrupted, [peter])


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(GO_TEXT, id="no signatures"),
        pytest.param(GO_TEXT + "\n", id="blank line only"),
        pytest.param(GO_TEXT + "\n" + GO_PETER_SIG[:-1], id="no final newline"),
        pytest.param("\x01" + GO_TEXT + "\n" + GO_PETER_SIG, id="control character"),
        pytest.param(b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode(), id="not UTF-8"),
        pytest.param(GO_TEXT + "\n" + GO_PETER_SIG.replace("PeterNeumann", "Bad Name"), id="bad name"),
        pytest.param(GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n", id="stray line"),
        pytest.param(GO_TEXT + "\n" + GO_PETER_SIG * (MAX_SIGNATURES + 1), id="too many signatures"),
        pytest.param(GO_TEXT + "\n\u2014 PeterNeumann AAAA\n", id="signature too short"),
        pytest.param(GO_TEXT + "\n\u2014 PeterNeumann not*base64\n", id="signature not base64"),
    ],
)
def test_malformed_notes_rejected(note: str | bytes) -> None:
    with pytest.raises(CheckpointError, match="malformed note"):
        open_note(note, [VerifierKey.parse(GO_PETER_VKEY)])


def _mangled(text: str) -> list[str]:
    """Every proper substring and every single-character increment of ``text`` (as Go's note tests do)."""
    variants = {text[i:j] for i in range(len(text) + 1) for j in range(i + 1, len(text) + 1)} - {text}
    variants |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    return sorted(variants)


def test_mangled_verifier_keys_rejected() -> None:
    accepted = []
    for variant in _mangled(GO_PETER_VKEY):
        try:
            VerifierKey.parse(variant)
        except KeyFormatError:
            continue
        accepted.append(variant)
    assert accepted == []
    with pytest.raises(KeyFormatError):  # wrong key length, key ID adjusted to match
        VerifierKey.parse("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(KeyFormatError, match="unsupported algorithm"):
        VerifierKey.parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_mangled_signer_keys_rejected() -> None:
    accepted = []
    for variant in _mangled(GO_SKEY):
        try:
            SigningKey.parse(variant)
        except KeyFormatError:
            continue
        accepted.append(variant)
    assert accepted == []


def test_signer_key_text_never_shows_in_repr() -> None:
    key = SigningKey.generate(ORIGIN)
    secret = key.to_text().split("+", 4)[4]  # PRIVATE+KEY+<name>+<key id>+<base64>: base64 may hold a "+" too
    assert len(secret) == 44
    assert secret not in repr(key)
    assert SigningKey.parse(key.to_text()).verifier == key.verifier
    assert SigningKey.from_seed(ORIGIN, bytes(32)).verifier == SigningKey.from_seed(ORIGIN, bytes(32)).verifier
    with pytest.raises(KeyFormatError):
        SigningKey.from_seed(ORIGIN, bytes(31))
    with pytest.raises(KeyFormatError):
        SigningKey.generate("name with space")


# --- checkpoints ---


def test_checkpoint_round_trip_and_exact_body() -> None:
    key = SigningKey.generate(ORIGIN)
    checkpoint = _checkpoint(_tree(5))
    note = sign_checkpoint(checkpoint, key)
    body, blank, signature_line = note.partition("\n\n")
    assert body + "\n" == f"{ORIGIN}\n5\n{base64.b64encode(checkpoint.root_hash).decode()}\n"
    assert blank == "\n\n"
    assert signature_line.startswith(f"\u2014 {ORIGIN} ")
    raw = base64.b64decode(signature_line.split(" ")[2])
    assert raw[:4] == key.key_id
    assert len(raw) == 4 + 64
    assert open_checkpoint(note, [key.verifier]) == checkpoint
    assert open_checkpoint(note, [key.verifier], origin=ORIGIN) == checkpoint


def test_checkpoint_for_another_log_rejected() -> None:
    key = SigningKey.generate(ORIGIN)
    note = sign_checkpoint(Checkpoint("other.example/log", 0, root_from_leaf_hashes([])), key)
    with pytest.raises(CheckpointError, match=r"expected 'quartieri\.example/audit'"):
        open_checkpoint(note, [key.verifier], origin=ORIGIN)


ROOT_B64 = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(f"{ORIGIN}\n5\n", "2 lines", id="missing root"),
        pytest.param(f"{ORIGIN}\n5\n{ROOT_B64}\nextension\n", "4 lines", id="extension line"),
        pytest.param(f"\n5\n{ROOT_B64}\n", "origin", id="empty origin"),
        pytest.param(f"{ORIGIN}\n05\n{ROOT_B64}\n", "leading zeros", id="leading zero"),
        pytest.param(f"{ORIGIN}\n+5\n{ROOT_B64}\n", "decimal digits", id="sign"),
        pytest.param(f"{ORIGIN}\n\u0665\n{ROOT_B64}\n", "decimal digits", id="non-ASCII digit"),
        pytest.param(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", "uint64", id="size too large"),
        pytest.param(f"{ORIGIN}\n5\n{ROOT_B64[:-4]}\n", "30 bytes", id="short root"),
        pytest.param(f"{ORIGIN}\n5\n{ROOT_B64[:-2]}9=\n", "canonical base64", id="non-canonical base64"),
        pytest.param(f"{ORIGIN}\n5\n{ROOT_B64} \n", "canonical base64", id="trailing space"),
    ],
)
def test_malformed_checkpoint_bodies_rejected(body: str, reason: str) -> None:
    key = SigningKey.generate(ORIGIN)
    with pytest.raises(CheckpointError, match=reason):
        open_checkpoint(sign_note(body, key), [key.verifier])


def test_checkpoint_values_validated() -> None:
    with pytest.raises(CheckpointError):
        Checkpoint("", 1, bytes(32))
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, -1, bytes(32))
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 1, bytes(31))
    with pytest.raises(CheckpointError):
        Checkpoint("two\nlines", 1, bytes(32))


def test_T05_forked_checkpoint_detected() -> None:
    key = SigningKey.generate(ORIGIN)
    trusted = [key.verifier]
    honest = _tree(12)
    forked = list(honest)
    forked[3] = leaf_hash(b'{"record":3,"edited":true}')

    witnessed = open_checkpoint(sign_checkpoint(_checkpoint(honest[:8]), key), trusted)
    honest_later = open_checkpoint(sign_checkpoint(_checkpoint(honest), key), trusted)
    forked_later = open_checkpoint(sign_checkpoint(_checkpoint(forked), key), trusted)

    # The honest log proves it only appended since the witnessed checkpoint.
    verify_checkpoint_consistency(witnessed, honest_later, consistency_proof(honest, 8))

    # The forked log's own proof cannot connect it to what the witness holds...
    with pytest.raises(InconsistentCheckpointError, match="not consistent"):
        verify_checkpoint_consistency(witnessed, forked_later, consistency_proof(forked, 8))
    # ...nor can the honest proof be replayed for it.
    with pytest.raises(InconsistentCheckpointError):
        verify_checkpoint_consistency(witnessed, forked_later, consistency_proof(honest, 8))
    # Two signed checkpoints of the same size with different roots are proof of a fork by themselves.
    with pytest.raises(InconsistentCheckpointError, match="two different roots for the same tree size 12"):
        verify_checkpoint_consistency(honest_later, forked_later, [])
    # A log that shrank (truncated) is caught the same way.
    with pytest.raises(InconsistentCheckpointError, match="smaller"):
        verify_checkpoint_consistency(honest_later, witnessed, [])
    other_log = Checkpoint("other.example/log", 12, honest_later.root_hash)
    with pytest.raises(CheckpointError, match="different logs"):
        verify_checkpoint_consistency(witnessed, other_log, consistency_proof(honest, 8))


def test_T06_wrong_or_unknown_signing_key_rejected() -> None:
    gateway_key = SigningKey.generate(ORIGIN)
    checkpoint = _checkpoint(_tree(3))

    # Signed by a key nobody trusts: a different name, or the trusted name with another key.
    stranger = SigningKey.generate("intruder.example/log")
    impostor = SigningKey.generate(ORIGIN)
    for wrong_key in (stranger, impostor):
        with pytest.raises(CheckpointError, match="no signature from a trusted key"):
            open_checkpoint(sign_checkpoint(checkpoint, wrong_key), [gateway_key.verifier])

    # No trusted keys configured at all.
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(sign_checkpoint(checkpoint, gateway_key), [])

    # A signature line that claims the trusted key's name and ID but was made with another key.
    forged_raw = gateway_key.key_id + impostor.sign(checkpoint.to_text().encode())
    forged = f"{checkpoint.to_text()}\n\u2014 {ORIGIN} {base64.b64encode(forged_raw).decode()}\n"
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(forged, [gateway_key.verifier])

    # A genuine signature moved onto an altered body (tree size changed).
    genuine = sign_checkpoint(checkpoint, gateway_key)
    altered = genuine.replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n4\n", 1)
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(altered, [gateway_key.verifier])

    # A bad signature from a trusted key rejects the note even if another trusted signature is good.
    witness = SigningKey.generate("witness.example/w1")
    bad_line = f"\u2014 {witness.name} {base64.b64encode(witness.key_id + bytes(64)).decode()}\n"
    with pytest.raises(CheckpointError, match=r"invalid signature for key witness\.example/w1"):
        open_checkpoint(genuine + bad_line, [gateway_key.verifier, witness.verifier])


def test_T07_key_rotation_both_keys_verify() -> None:
    old_key = SigningKey.generate(ORIGIN)
    new_key = SigningKey.generate(ORIGIN)
    assert old_key.key_id != new_key.key_id
    checkpoint = _checkpoint(_tree(7))

    # During the rotation the log signs with both keys; readers on either key (or both) accept it.
    note = sign_checkpoint(checkpoint, old_key, new_key)
    assert open_checkpoint(note, [old_key.verifier]) == checkpoint
    assert open_checkpoint(note, [new_key.verifier]) == checkpoint
    assert open_note(note, [old_key.verifier, new_key.verifier]).verified_by == (
        old_key.verifier,
        new_key.verifier,
    )

    # After the rotation: notes signed by the new key alone open for readers who added it...
    after = sign_checkpoint(checkpoint, new_key)
    assert open_checkpoint(after, [old_key.verifier, new_key.verifier]) == checkpoint
    # ...and a note from the retired key is refused once readers drop it.
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(sign_checkpoint(checkpoint, old_key), [new_key.verifier])

    # Verifier keys travel as text.
    assert VerifierKey.parse(new_key.verifier.to_text()) == new_key.verifier
    with pytest.raises(ValueError, match="more than once"):
        sign_checkpoint(checkpoint, new_key, new_key)
