"""ASST Fatebenefratelli-Sacco adapter (FHIR R4): encounters, immunizations, service requests.

Carries no flow yet: the first flows through it (F2-F5, F11) come with the full adapter set.
"""

__all__: list[str] = []
