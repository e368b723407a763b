"""The console's home: the audit log's integrity at a glance, the open review items and emergency-override
alerts, and the charts of the last 30 days (decisions per flow and day, permitted or denied by reason class;
drops at delivery; consents given and withdrawn). Every figure comes from
:class:`gateway.privacy.office.PrivacyOffice` under the signed-in officer's organisation scoping, and each read is
audited as the API's are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from gateway.console.charts import Series, stacked_bars
from gateway.console.i18n import language, translator
from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, current_session
from gateway.privacy.activity import OVERVIEW_DAYS, ActivityTally, ActivityView

__all__ = ["router"]

router = APIRouter()
DAYS = OVERVIEW_DAYS


def _charts(view: ActivityView, t: Callable[..., str]) -> dict[str, Any]:
    decisions = [Series("permit", t("chart.permit"), "fill-permit"),
                 Series("deny-consent", t("chart.deny_consent"), "fill-deny-consent"),
                 Series("deny-policy", t("chart.deny_policy"), "fill-deny-policy"),
                 Series("deny-sensitive", t("chart.deny_sensitive"), "fill-deny-input"),
                 Series("deny-other", t("chart.deny_other"), "fill-deny-other")]

    def describe(totals: dict[str, int]) -> str:
        return t("chart.totals", days=DAYS) + "; ".join(
            f"{s.label} {totals[s.key]}" for s in (*decisions, *drops, *consents) if s.key in totals)

    drops = [Series("drop", t("chart.dropped"), "fill-drop")]
    consents = [Series("given", t("chart.given"), "fill-given"), Series("withdrawn", t("chart.withdrawn"),
                                                                        "fill-withdrawn")]
    day = t("chart.day")
    per_flow: list[tuple[str, Markup]] = [
        (flow, stacked_bars(t("chart.decisions_flow", flow=flow), view.days, decisions,
                            view.series("decision", flow), describe, day))
        for flow in view.flows("decision")]
    return {
        "decisions_all": stacked_bars(t("chart.decisions_all"), view.days, decisions, view.series("decision"),
                                      describe, day),
        "decisions_per_flow": per_flow,
        "drops": stacked_bars(t("chart.drops"), view.days, drops, view.series("drop"), describe, day),
        "consents": stacked_bars(t("chart.consents"), view.days, consents, view.series("consent"), describe, day),
    }


@router.get("/", summary="Console home")
async def home(request: Request, session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    rid = request_id(request)
    queue = await office.review_queue(officer, rid, limit=500, reviewed=False)
    view = await office.daily_activity(officer, rid, ActivityTally(DAYS))
    integrity = await office.integrity()
    alerts = [item for item in queue if item["kind"] == "emergency"]
    return render(request, "home.html", {
        "integrity": integrity, "open_items": len(queue), "alerts": alerts[:10], "alert_count": len(alerts),
        "backlog": view.backlog,
        **_charts(view, translator(language(request)))}, page="home")
