"""Partner adapters: pure translation between each partner's native messages and canonical envelopes.

Every adapter module exposes ``decode(raw: bytes, content_type: str) -> list[Envelope]`` for what the partner
sends and ``encode(envelope: Envelope) -> bytes`` for what it receives. No I/O, no settings, no policy.
"""

__all__: list[str] = []
