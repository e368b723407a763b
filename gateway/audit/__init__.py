"""Tamper-evident audit log: canonical JSON records, RFC 6962 Merkle tree, signed checkpoints."""
