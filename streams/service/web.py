"""The worker's web views (Faust's web server, loopback by default).

- ``/health``: liveness and counters; ``/ready``: 200 once partitions are
  assigned and no rebalance is running, else 503 (for orchestrator probes);
- ``/metrics``: Prometheus text format;
- ``/accounts/{account_id}/``: the account's current features and scores,
  routed to the worker that owns the key (``table_route``);
- ``/alerts/``: a small live HTML page of recent alerts, one block per
  incident: a campaign (with the account page it adopted), or an account page
  with the accounts that joined it (``/alerts.json``: ``alerts`` newest first
  and the same ``groups``, ``streams.oncall.render.group_by_incident``);
- ``/actions.json``: response actions and their status (the actions topic);
  ``POST /actions/{id}/approve`` and ``POST /actions/{id}/reject`` with a
  JSON body ``{"reason": "...", "by": "name"}`` decide one (the token is
  always required for these; GET is refused: streams/service/web_auth.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import Any

import faust
from faust.web import Request, Response, View

from detectors.schema import MAX_ID_CHARS
from streams.oncall.render import group_by_incident
from streams.response.actions import ActionAlreadyDecided, ActionNotFound
from streams.service.service import Service

ALERTS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>distillwatch · recent alerts</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;
color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:14px 24px;display:flex;align-items:baseline;gap:16px}
header h1{font-size:18px;margin:0}header span{color:#94a3b8;font-size:13px}
main{padding:16px 24px}table{border-collapse:collapse;width:100%;background:#fff;
border:1px solid #e2e8f0;border-radius:8px;overflow:hidden}
th,td{padding:6px 10px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.num{font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff}.critical{background:#b91c1c}.error{background:#dc2626}.warning{background:#d97706}
.info{background:#0284c7}.resolved td{color:#64748b}.st{font-size:12px;text-transform:uppercase}
.empty{color:#64748b;padding:20px}a{color:#1d4ed8}tr.camp td{background:#eef2ff;font-weight:600}
tr.sub td:first-child{border-left:4px solid #c7d2fe}tr.sub td{font-size:13px}
</style></head><body>
<header><h1>distillwatch</h1><span>recent alerts on this worker · refreshes every 2 s ·
<span id="stamp">loading…</span></span></header>
<main><table><thead><tr><th>event time (UTC)</th><th>status</th><th>severity</th>
<th>subject</th><th>score</th><th>summary</th></tr></thead><tbody id="rows">
<tr><td colspan="6" class="empty">loading…</td></tr></tbody></table></main>
<script>
function esc(s){return String(s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",
'"':"&quot;","'":"&#39;"}[c]));}
function row(a,cls){
  const cid=(a.details||{}).campaign_id;
  const subj=a.account_id?`<a href="/accounts/${encodeURIComponent(a.account_id)}/">`+
    `${esc(a.account_id)}</a>`:(a.detector==="campaign"&&cid?
    `campaign ${esc(cid)} (${a.account_count} accounts)`+
    (a.dedup_key!=="campaign:"+cid?` · incident ${esc(a.dedup_key)}`:""):
    `${esc(a.dedup_key)} (${a.account_count} accounts)`);
  return `<tr class="${esc(a.status)} ${cls}"><td class="num">`+
    `${esc(a.ts.slice(0,19).replace("T"," "))}</td><td class="st">${esc(a.status)}`+
    `${a.revision?" · update "+a.revision:""}</td><td><span class="sev ${esc(a.severity)}">`+
    `${esc(a.severity)}</span></td><td>${subj}</td><td class="num">${a.score.toFixed(2)}</td>`+
    `<td>${esc(a.summary)}</td></tr>`;}
async function refresh(){
  try{
    const r=await fetch("/alerts.json",{cache:"no-store"});const data=await r.json();
    // one block per incident: its latest record (a campaign's, else its own
    // page), then the other alerts in it (account alerts naming the campaign,
    // the account page it adopted); member records (campaign, account and
    // cluster members) fold into one line
    const rows=data.groups.map(g=>{
      if(!g.accounts.length&&!g.members.length)return row(g.record,"");
      let out=row(g.record,"camp");
      out+=g.accounts.map(a=>row(a,"sub")).join("");
      const named=[...new Set(g.members.map(m=>m.account_id))];
      if(g.members.length)out+=`<tr class="sub"><td></td><td colspan="5">`+
        `${named.length} account(s) in it by ${g.members.length} member record(s) on this `+
        `worker`+(g.campaign_id?` · campaign ${esc(g.campaign_id)}`:"")+": "+
        named.slice(-20).map(esc).join(", ")+`</td></tr>`;
      return out;});
    document.getElementById("rows").innerHTML=rows.length?rows.join(""):
      '<tr><td colspan="6" class="empty">No alerts yet.</td></tr>';
    document.getElementById("stamp").textContent="updated "+new Date().toISOString().slice(11,19)+
      " UTC · "+data.events_processed.toLocaleString()+" events processed";
  }catch(e){document.getElementById("stamp").textContent="worker unreachable";}
}
refresh();setInterval(refresh,2000);
</script></body></html>
"""


def register_views(app: faust.App, service: Service) -> None:
    """Attach the web views to ``app``."""
    table = service.table
    processor = service.processor
    recent: deque[dict[str, Any]] = service.recent_alerts

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json({"status": "ok", **service.metrics.health(),
                         "content": service.processor.coverage.report()})

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        consumer = app.consumer if app.producer is not None else None
        assigned = bool(consumer and consumer.assignment())
        is_ready = assigned and not app.rebalancing
        body: dict[str, Any] = {"ready": is_ready}
        if not is_ready:
            body["reason"] = "rebalancing" if assigned else "no partitions assigned"
        alarm = service.dlq_alarm
        if alarm is not None and alarm.firing:
            # detection is starved: a load balancer or on-call should know
            is_ready = False
            body.update(ready=False, reason=alarm.reason())
        return web.json(body, status=200 if is_ready else 503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        # aiohttp refuses a charset inside content_type=; the header carries it
        return web.text(service.metrics.render(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    @app.page("/alerts.json")
    async def alerts_json(web: View, request: Request) -> Response:
        records = list(recent)
        return web.json({"alerts": list(reversed(records)),
                         "groups": group_by_incident(records),
                         "events_processed": service.metrics.events_processed})

    @app.page("/alerts/")
    async def alerts_page(web: View, request: Request) -> Response:
        return web.html(ALERTS_PAGE)

    @app.page("/accounts/{account_id}/")
    class AccountView(View):
        # table_route's type allows only get(self, request); Faust passes the
        # route's match_info as keyword arguments, as aiohttp views get them
        @app.table_route(table=table, match_info="account_id")  # type: ignore[arg-type]
        async def get(self, request: Request, account_id: str) -> Response:
            if len(account_id) > MAX_ID_CHARS:
                return self.json({"error": "account_id too long"}, status=400)
            described = processor.describe(account_id)
            if described is None:
                return self.json({"account_id": account_id, "tracked": False}, status=404)
            return self.json({"account_id": account_id, "tracked": True, **described})

    @app.page("/actions.json")
    async def actions_json(web: View, request: Request) -> Response:
        from streams.response.actions import load_ledger

        loop = asyncio.get_running_loop()
        ledger = await loop.run_in_executor(None, load_ledger, service.settings)
        return web.json({"actions": [
            {**p, "status": ledger.status(a), "decision": ledger.decisions.get(a)}
            for a, p in ledger.proposals.items()]})

    @app.page("/actions/{action_id}/{verb}")
    class ActionDecision(View):
        async def post(self, request: Request, action_id: str, verb: str) -> Response:
            from streams.response.actions import decide_on

            if verb not in ("approve", "reject"):
                return self.json({"error": "POST /actions/ID/approve or /actions/ID/reject"},
                                 status=404)
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not str(body.get("reason", "")).strip():
                return self.json({"error": 'a JSON body {"reason": "...", "by": "name"} '
                                           "is required"}, status=400)
            principal = "web:" + str(body.get("by") or "token-holder")[:100]
            loop = asyncio.get_running_loop()
            try:
                record = await loop.run_in_executor(None, partial(
                    decide_on, service.settings, action_id[:64],
                    "approved" if verb == "approve" else "rejected", principal,
                    str(body["reason"])))
            except ActionNotFound as exc:
                return self.json({"error": str(exc)}, status=404)
            except ActionAlreadyDecided as exc:
                return self.json({"error": str(exc)}, status=409)
            return self.json(record)

    del health, ready, metrics, alerts_json, alerts_page, AccountView  # registered
    del actions_json, ActionDecision
