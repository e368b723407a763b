// Verifies, in the officer's own browser, what the console's server says about the audit log (WebCrypto only):
//  * a signed checkpoint (C2SP signed note): every signature by a key the officer trusts must verify (Ed25519),
//    and at least one must be there; the key ids are recomputed from the keys;
//  * an inclusion proof (RFC 9162): the record's stored bytes hash to a leaf that the audit path leads up to
//    the root of that signed checkpoint.
// The page hands the data in a <script type="application/json" id="verify-data"> block; the verifier keys are
// shown in an editable field, so the officer can check against keys obtained elsewhere.

const encoder = new TextEncoder();

function fromBase64(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function fromHex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error(`not hex: ${text.slice(0, 16)}`);
  return Uint8Array.from(text.match(/../g) || [], (h) => parseInt(h, 16));
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

function same(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function parseVerifierKey(text) {
  // <name>+<hex key id>+<base64 key>: the name holds no "+", the base64 may
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text.trim());
  if (!match) throw new Error(`not a verifier key: ${text.slice(0, 40)}`);
  const [, name, keyIdHex, encoded] = match;
  const raw = fromBase64(encoded);
  if (raw.length !== 33 || raw[0] !== 0x01) throw new Error(`not an Ed25519 verifier key: ${name}`);
  return { name, keyId: fromHex(keyIdHex), raw, publicKey: raw.slice(1) };
}

export function parseNote(note) {
  const split = note.indexOf("\n\n");
  if (split < 0) throw new Error("the checkpoint has no signature block");
  const text = note.slice(0, split + 1);
  const lines = text.split("\n");
  if (lines.length < 4) throw new Error("the checkpoint body is not origin, size and root");
  const signatures = note.slice(split + 2).split("\n").filter(Boolean).map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) throw new Error("a signature line is malformed");
    const blob = fromBase64(match[2]);
    return { name: match[1], keyId: blob.slice(0, 4), signature: blob.slice(4) };
  });
  return { text, origin: lines[0], size: Number(lines[1]), root: fromBase64(lines[2]), signatures };
}

export async function verifyNote(note, verifierKeys) {
  const parsed = parseNote(note);
  const verifiedBy = [];
  for (const key of verifierKeys) {
    const computed = (await sha256(concat(encoder.encode(key.name), new Uint8Array([0x0a]), key.raw))).slice(0, 4);
    if (!same(computed, key.keyId)) throw new Error(`the key id of ${key.name} does not match its key`);
    for (const signed of parsed.signatures) {
      if (signed.name !== key.name || !same(signed.keyId, key.keyId)) continue;
      const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
      const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, signed.signature,
                                            encoder.encode(parsed.text));
      if (!ok) throw new Error(`the signature of ${key.name}+${toHex(key.keyId)} does not verify`);
      verifiedBy.push(`${key.name}+${toHex(key.keyId)}`);
    }
  }
  if (verifiedBy.length === 0) throw new Error("no trusted key signed this checkpoint");
  return { ...parsed, verifiedBy };
}

async function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([0x01]), left, right));
}

export async function rootFromInclusionProof(leafHash, index, treeSize, proof) {
  // RFC 9162 section 2.1.3.2
  if (index >= treeSize) throw new Error("the record is not in the signed tree");
  let fn = index;
  let sn = treeSize - 1;
  let hash = leafHash;
  for (const sibling of proof) {
    if (sn === 0) throw new Error("the proof is longer than the tree is deep");
    if (fn % 2 === 1 || fn === sn) {
      hash = await nodeHash(sibling, hash);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      hash = await nodeHash(hash, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
  return hash;
}

export async function verifyInclusion(data, verifierKeys) {
  const checkpoint = await verifyNote(data.note, verifierKeys);
  if (checkpoint.size !== data.tree_size) throw new Error("the proof is not for the signed tree size");
  const leaf = await sha256(concat(new Uint8Array([0x00]), encoder.encode(data.record)));
  const root = await rootFromInclusionProof(leaf, data.index, data.tree_size, data.proof.map(fromHex));
  if (!same(root, checkpoint.root)) throw new Error("the record does not lead to the signed root");
  return checkpoint;
}

function start() {
  const block = document.getElementById("verify-data");
  const button = document.getElementById("verify-button");
  const keysField = document.getElementById("vkeys");
  const result = document.getElementById("verify-result");
  if (!block || !button || !keysField || !result) return;
  const data = JSON.parse(block.textContent);
  keysField.value = (data.vkeys || []).join("\n");
  button.addEventListener("click", async () => {
    result.textContent = "…";
    result.className = "verify-result";
    try {
      if (!globalThis.crypto || !crypto.subtle) throw new Error(button.dataset.unsupported);
      const keys = keysField.value.split("\n").filter((line) => line.trim()).map(parseVerifierKey);
      const checkpoint = button.dataset.kind === "inclusion"
        ? await verifyInclusion(data, keys) : await verifyNote(data.note, keys);
      result.textContent = `${button.dataset.ok} (${checkpoint.size} · ${checkpoint.verifiedBy.join(", ")})`;
      result.className = "verify-result success";
      result.dataset.outcome = "verified";
    } catch (error) {
      result.textContent = `${button.dataset.fail}: ${error.message}`;
      result.className = "verify-result alert";
      result.dataset.outcome = "failed";
    }
  });
}

if (typeof document !== "undefined") start();
