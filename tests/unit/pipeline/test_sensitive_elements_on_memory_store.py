"""Rule 7 at element level (plan C-12), over the in-memory store: a protected discharge (F11) whose care needs
include psychological support (code labelled PSY) reaches the Comune without that care need, the disclosure is
audited as redacted, and a discharge whose care needs are only psychological support is denied to the Comune.
F11 runs end to end over both real backends in ``tests/e2e/test_flows.py``."""

from __future__ import annotations

from typing import Any

import orjson

from adapters.asst_fhir.systems import CARE_NEED_SYSTEM, ORGANISATION_SYSTEM
from gateway.simulators import asst_discharge
from tests.e2e.test_flows import CF
from tests.pipeline_harness import Pipeline


def discharge(encounter_id: str, correlation_id: str, needs: tuple[str, ...],
              recipients: tuple[str, ...] = ("comune", "aler")) -> dict[str, Any]:
    """The simulator's discharge with these care needs (its logistics kept), addressed to ``recipients``."""
    resource = asst_discharge(CF, encounter_id, correlation_id)
    arrangements = resource["hospitalization"]["specialArrangement"]
    resource["hospitalization"]["specialArrangement"] = [
        *(a for a in arrangements if a["coding"][0]["system"] != CARE_NEED_SYSTEM),
        *({"coding": [{"system": CARE_NEED_SYSTEM, "code": code}]} for code in needs),
    ]
    resource["meta"]["tag"] = [t for t in resource["meta"]["tag"]
                               if t["system"] != ORGANISATION_SYSTEM or t["code"] in recipients]
    return resource


async def test_C12_a_psychological_care_need_never_reaches_the_comune_and_alone_is_denied(
    pipeline: Pipeline,
) -> None:
    await pipeline.submit("asst", discharge("stay-21", "corr-c12-1", ("home-care", "psychological-support")),
                          "application/fhir+json")
    [to_comune] = await pipeline.read("out", "comune")
    [to_aler] = await pipeline.read("out", "aler")
    assert orjson.loads(to_comune.value)["payload"]["care_needs"] == ["home-care"]
    assert "psychological-support" not in to_comune.value.decode()
    assert "psychological-support" not in to_aler.value.decode()
    assert sorted(await pipeline.decisions()) == [("F11", "permit", None), ("F11-aler", "permit", None)]
    [disclosure] = [r for r in await pipeline.audit()
                    if r["event_type"] == "disclosure" and r.get("flow_id") == "F11"]
    assert "REDACTED:PSY" in disclosure["labels"]

    await pipeline.submit("asst", discharge("stay-22", "corr-c12-2", ("psychological-support",), ("comune",)),
                          "application/fhir+json")
    statuses = [orjson.loads(s.value) for s in await pipeline.read("status", "asst")]
    assert len(statuses) == 2
    [denied] = [s for s in statuses if s["correlation_id"] == "corr-c12-2"]
    assert (denied["state"], denied["recipients"]) == ("denied", [])
    assert ("F11", "deny", "sensitive-label-denied") in await pipeline.decisions()
    records = [r for r in await pipeline.audit() if r.get("correlation_id") == "corr-c12-2"]
    assert [(r["event_type"], r["outcome"]) for r in records] == [("decision", "deny")]
    assert len(await pipeline.read("out", "comune")) == 1  # still only the first
