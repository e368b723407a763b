"""ALER Milano adapter: tenancy records as ALER's system sends them <-> canonical envelopes.

Today it decodes the arrears referral (``segnalazione-morosita``, flow F1); see :mod:`adapters.aler.arrears`.
"""

from adapters.aler.arrears import AlerArrearsMessage, decode

__all__ = ["AlerArrearsMessage", "decode"]
