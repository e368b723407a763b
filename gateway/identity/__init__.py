"""Identity helpers: person identifiers that are pure functions of their text, and synthetic people.

:mod:`gateway.identity.codice_fiscale` validates and canonicalises Italian codici fiscali (with omocodia)
and recognises the STP/ENI codes issued to people who have no codice fiscale.
:mod:`gateway.identity.synthetic` generates deterministic synthetic ALER tenancies for tests and
benchmarks. Nothing here does I/O, reads settings or logs: identifiers are personal data.
"""
