"""The console's in-browser verifier (``gateway/console/static/verify.js``) run by Node's WebCrypto against
checkpoints signed and proofs built by the gateway's own Python code: a sound checkpoint and proof verify for
every index of trees of several shapes; a changed root, record, proof or key, and a signature by an unknown key,
are refused. The browser tests run the same module in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from gateway.audit.merkle import inclusion_proof_with_root, leaf_hash

VERIFY_JS = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static" / "verify.js"
RUNNER = """
import * as verify from %s;
const cases = JSON.parse(process.argv[1]);  // node -e: the first argument after the script
const out = [];
for (const c of cases) {
  try {
    const keys = c.vkeys.map(verify.parseVerifierKey);
    const checked = c.kind === "inclusion"
      ? await verify.verifyInclusion(c, keys) : await verify.verifyNote(c.note, keys);
    out.push({ok: true, size: checked.size, by: checked.verifiedBy});
  } catch (error) {
    out.push({ok: false, error: error.message});
  }
}
console.log(JSON.stringify(out));
"""


def _run(cases: list[dict[str, object]]) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test.sh needs it for tools/asyncapi too)")
    script = RUNNER % json.dumps(VERIFY_JS.as_uri())
    done = subprocess.run([node, "--input-type=module", "-e", script, json.dumps(cases)], capture_output=True,
                          text=True, check=True, timeout=60)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _log(size: int, key: SigningKey) -> tuple[list[str], str]:
    records = [json.dumps({"log_index": i, "event_type": "decision", "flow_id": "F1"}, separators=(",", ":"))
               for i in range(size)]
    hashes = [leaf_hash(r.encode()) for r in records]
    _, root = inclusion_proof_with_root(hashes, 0)
    return records, sign_checkpoint(Checkpoint("quartieri-gateway/audit", size, root), key)


def test_sound_checkpoints_and_inclusion_proofs_verify_for_every_index() -> None:
    key = SigningKey.generate("quartieri-gateway/audit")
    vkey = key.verifier.to_text()
    cases: list[dict[str, object]] = []
    for size in (1, 2, 3, 7, 8, 13):
        records, note = _log(size, key)
        hashes = [leaf_hash(r.encode()) for r in records]
        cases.append({"kind": "checkpoint", "note": note, "vkeys": [vkey]})
        for index in range(size):
            proof, _ = inclusion_proof_with_root(hashes, index)
            cases.append({"kind": "inclusion", "note": note, "vkeys": [vkey], "record": records[index],
                          "index": index, "tree_size": size, "proof": [p.hex() for p in proof]})
    results = _run(cases)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
    assert {r["by"][0] for r in results} == {f"{key.name}+{key.key_id.hex()}"}  # type: ignore[index]


def test_tampering_is_refused() -> None:
    key, stranger = SigningKey.generate("quartieri-gateway/audit"), SigningKey.generate("quartieri-gateway/audit")
    records, note = _log(5, key)
    hashes = [leaf_hash(r.encode()) for r in records]
    proof, _ = inclusion_proof_with_root(hashes, 3)
    origin, size, root, rest = note.split("\n", 3)
    forged_root = "\n".join((origin, size, ("A" if root[0] != "A" else "B") + root[1:], rest))
    sound = {"kind": "inclusion", "note": note, "vkeys": [key.verifier.to_text()], "record": records[3], "index": 3,
             "tree_size": 5, "proof": [p.hex() for p in proof]}
    results = _run([
        {"kind": "checkpoint", "note": forged_root, "vkeys": [key.verifier.to_text()]},
        {"kind": "checkpoint", "note": note, "vkeys": [stranger.verifier.to_text()]},
        {**sound, "record": records[3].replace("F1", "F2")},
        {**sound, "index": 2},
        {**sound, "proof": [p.hex() for p in reversed(proof)]},
        {**sound, "tree_size": 6},
        sound,
    ])
    assert [r["ok"] for r in results] == [False, False, False, False, False, False, True], results
    assert "does not verify" in str(results[0]["error"]) and "no trusted key" in str(results[1]["error"])
