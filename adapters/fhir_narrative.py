"""The narrative (``text``) of the FHIR resources the gateway writes: a short, generated summary of coded facts.

FHIR asks every DomainResource for a human-readable narrative (constraint dom-6); a reader of a ServiceRequest,
Consent or AuditEvent the gateway sent sees what it is about without decoding it. The narrative repeats only
codes and their Italian labels already in the resource, never a codice fiscale, a name, a birth date or any
free text: it is built from (label, value) pairs the caller chooses, and every value is escaped.

Shared by the adapters that write FHIR and by the core's own FHIR resources (Consents, AuditEvents); it imports
nothing of a partner's adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

__all__ = ["generated_narrative"]

XHTML = "http://www.w3.org/1999/xhtml"


def generated_narrative(title: str, facts: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """``Resource.text`` with status ``generated``: ``title`` and one line per (label, value) with a value."""
    lines = "".join(f"<li>{escape(label)}: {escape(value)}</li>" for label, value in facts if value)
    body = f"<p>{escape(title)}</p>" + (f"<ul>{lines}</ul>" if lines else "")
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}
