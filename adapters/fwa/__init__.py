"""Fondazione Welfare Ambrosiano adapter: canonical microcredit referrals -> FWA's native referral JSON.

See :mod:`adapters.fwa.referral`. Outcomes back from FWA come with the full adapter set.
"""

from adapters.fwa.referral import FwaReferral, encode

__all__ = ["FwaReferral", "encode"]
