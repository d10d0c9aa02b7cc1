"""``distillwatch replay ... --report report.html``: one self-contained HTML file.

For the top alerted accounts: timelines of topic entropy and request rate with
their baselines and alert markers; the metrics table; score distributions of
labelled attackers vs benign accounts. Charts are inline SVG (no plotting
library, no network): the file opens anywhere, offline.
"""

from __future__ import annotations

import argparse
import html
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from detectors.replay import Replayer
from detectors.schema import Event, format_ts
from streams.replay.files import load_labels, to_toml

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 760, 190, 56, 16, 14, 30
MAX_POINTS = 800  # samples kept per account and chart line
COLOURS = {"now": "#2563eb", "baseline": "#94a3b8", "firing": "#dc2626", "resolved": "#16a34a",
           "attack": "#dc2626", "benign": "#2563eb"}


def _state_of(replayer: Replayer, account_id: str) -> Any:
    return replayer.runners[replayer.partition_of(account_id)].states.get(account_id)


def _svg_lines(series: dict[str, list[tuple[float, float]]], markers: list[tuple[float, str]],
               title: str, unit: str, log_scale: bool = False,
               fixed: tuple[float, float] | None = None) -> str:
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f"<p class='empty'>{html.escape(title)}: no data</p>"
    t0 = min(p[0] for p in pts)
    t1 = max(max(p[0] for p in pts), t0 + 1)
    tf = (lambda v: math.log10(max(v, 1e-3))) if log_scale else (lambda v: v)
    ys = [tf(p[1]) for p in pts]
    y0, y1 = min(ys), max(ys)
    if fixed is not None:
        y0, y1 = fixed
    elif log_scale:
        y0, y1 = math.floor(y0), math.ceil(y1 + 1e-9)
    else:
        y0, y1 = min(0.0, y0), max(y1, y0 + 1e-6) * 1.05
    if y1 - y0 < 1e-9:
        y1 = y0 + 1

    def x(t: float) -> float:
        return PAD_L + (t - t0) / (t1 - t0) * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return PAD_T + (1 - (tf(v) - y0) / (y1 - y0)) * (H - PAD_T - PAD_B)

    out = [f"<svg viewBox='0 0 {W} {H}' class='chart' role='img' "
           f"aria-label='{html.escape(title)}'>"]
    # grid and axes
    for i in range(5):
        gy = PAD_T + i * (H - PAD_T - PAD_B) / 4
        val = y1 - i * (y1 - y0) / 4
        label = f"{10 ** val:.3g}" if log_scale else f"{val:.2f}"
        out.append(f"<line x1='{PAD_L}' x2='{W - PAD_R}' y1='{gy:.1f}' y2='{gy:.1f}' "
                   "class='grid'/>")
        out.append(f"<text x='{PAD_L - 6}' y='{gy + 4:.1f}' class='tick' "
                   f"text-anchor='end'>{label}</text>")
    for i in range(5):
        t = t0 + i * (t1 - t0) / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(f"<text x='{x(t):.1f}' y='{H - 8}' class='tick' text-anchor='{anchor}'>"
                   f"{format_ts(t)[5:16].replace('T', ' ')}</text>")
    for t, status in markers:
        out.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{PAD_T}' y2='{H - PAD_B}' "
                   f"stroke='{COLOURS[status]}' stroke-width='2' stroke-dasharray='4 3'>"
                   f"<title>{status} {format_ts(t)}</title></line>")
    for name, s in series.items():
        if len(s) < 2:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s)
        dash = " stroke-dasharray='6 4'" if name == "baseline" else ""
        out.append(f"<polyline points='{path}' fill='none' stroke='{COLOURS[name]}' "
                   f"stroke-width='1.8'{dash}/>")
    out.append(f"<text x='{PAD_L}' y='{PAD_T - 2}' class='ctitle'>{html.escape(title)} "
               f"<tspan class='unit'>({html.escape(unit)})</tspan></text></svg>")
    return "".join(out)


def _svg_hist(groups: dict[str, list[float]], threshold: float | None) -> str:
    bins = 20
    counts = {g: [0] * bins for g in groups}
    for g, vals in groups.items():
        for v in vals:
            counts[g][min(bins - 1, max(0, int(v * bins)))] += 1
    # share within each group, so a few attackers are visible next to many benign accounts
    shares = {g: [c / max(1, len(groups[g])) for c in cs] for g, cs in counts.items()}
    top = max([s for cs in shares.values() for s in cs] + [1e-9])
    bw = (W - PAD_L - PAD_R) / bins
    out = [f"<svg viewBox='0 0 {W} {H}' class='chart' role='img' aria-label='score histogram'>"]
    for i in range(5):
        gy = PAD_T + i * (H - PAD_T - PAD_B) / 4
        out.append(f"<line x1='{PAD_L}' x2='{W - PAD_R}' y1='{gy:.1f}' y2='{gy:.1f}' "
                   "class='grid'/>")
        out.append(f"<text x='{PAD_L - 6}' y='{gy + 4:.1f}' class='tick' text-anchor='end'>"
                   f"{100 * top * (1 - i / 4):.0f}%</text>")
    for gi, (g, cs) in enumerate(shares.items()):
        colour = COLOURS["attack" if g.startswith("attack") else "benign"]
        for i, s in enumerate(cs):
            if not s:
                continue
            h = s / top * (H - PAD_T - PAD_B)
            x0 = PAD_L + i * bw + (gi * bw / len(shares))
            width = bw / len(shares) - 1
            out.append(f"<rect x='{x0:.1f}' y='{H - PAD_B - h:.1f}' width='{width:.1f}'"
                       f" height='{h:.1f}' fill='{colour}' opacity='0.8'><title>{html.escape(g)}:"
                       f" {100 * s:.1f}% with peak score {i / bins:.2f}-{(i + 1) / bins:.2f}"
                       "</title></rect>")
    for i in range(0, bins + 1, 4):
        out.append(f"<text x='{PAD_L + i * bw:.1f}' y='{H - 8}' class='tick' "
                   f"text-anchor='middle'>{i / bins:.1f}</text>")
    if threshold is not None:
        tx = PAD_L + threshold * (W - PAD_L - PAD_R)
        out.append(f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='{PAD_T}' y2='{H - PAD_B}' "
                   "stroke='#0f172a' stroke-dasharray='3 3'/><text x='{:.1f}' y='{}' "
                   "class='tick'>fire threshold</text>".format(tx + 4, PAD_T + 10))
    out.append("</svg>")
    return "".join(out)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;
color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1}
main{max-width:1100px;margin:0 auto;padding:18px 28px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:14px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 4px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{flex:1;min-width:140px;background:#f1f5f9;
border-radius:8px;padding:10px 12px}.card b{display:block;font-size:20px}
.chart{width:100%;height:auto;display:block}.grid{stroke:#e2e8f0}.tick{font-size:10px;fill:#64748b}
.ctitle{font-size:12px;font-weight:600;fill:#0f172a}.unit{font-weight:400;fill:#64748b}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
td,th{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left}th{background:#f1f5f9}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:18px;height:3px;
vertical-align:middle;margin-right:5px}
.acct{display:grid;grid-template-columns:1fr 1fr;gap:8px}.meta{color:#475569;font-size:12px}
pre{background:#f1f5f9;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
"""


def build_report(args: argparse.Namespace, config: dict[str, Any], result: Any,
                 metrics: dict[str, Any], top_n: int = 6) -> None:
    from streams.replay.replayer import replay_files

    firing = [a for a in result.alerts if a.status == "firing" and a.account_id]
    peak: dict[str, float] = defaultdict(float)
    for a in firing:
        peak[a.account_id] = max(peak[a.account_id], a.score)
    ranked = sorted(peak, key=lambda acct: (-peak[acct], acct))
    family: dict[str, str] = {}
    if getattr(args, "labels", None):
        family = {lab["account_id"]: lab["attack"] for lab in load_labels(args.labels)}
    top = _diverse(ranked, family, top_n)
    markers: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for a in result.alerts:
        if a.account_id in peak:
            markers[a.account_id].append((a.ts, a.status))

    # Second pass: the same replay, sampling the top accounts' features and
    # every account's peak score.
    wanted = set(top)
    series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    last_sample: dict[str, float] = {}
    max_score: dict[str, float] = defaultdict(float)
    # Event-time spacing between samples, per account: starts at every event and
    # doubles (thinning what was kept) whenever an account passes MAX_POINTS.
    step: dict[str, float] = defaultdict(float)

    def on_event(event: Event, replayer: Replayer) -> None:
        state = _state_of(replayer, event.account_id)
        if state is None:
            return
        score = float(getattr(state, "score", 0.0))
        if score > max_score[event.account_id]:
            max_score[event.account_id] = score
        if event.account_id not in wanted:
            return
        acct = event.account_id
        if event.ts - last_sample.get(acct, -1e18) < step[acct]:
            return
        last_sample[acct] = event.ts
        detector = replayer.runners[replayer.partition_of(acct)].detector
        f = detector.features(state)
        s = series[acct]
        if len(s["rate"]) >= MAX_POINTS:
            first, last = s["rate"][0][0], s["rate"][-1][0]
            step[acct] = max(2 * step[acct], (last - first) / MAX_POINTS * 2)
            for name in s:
                s[name] = s[name][::2]
        s["rate"].append((event.ts, f.get("rate_per_min", 0.0)))
        s["rate_base"].append((event.ts, f.get("rate_baseline_per_min", 0.0)))
        if "entropy_short" in f:
            s["ent"].append((event.ts, f["entropy_short"]))
            s["ent_base"].append((event.ts, f["entropy_long"]))
        s["score"].append((event.ts, score))

    replay_files(args.files, config, partitions=args.partitions, lateness_s=args.lateness,
                 show_progress=False, on_event=on_event)

    labels: dict[str, str] = {}
    full: list[dict[str, Any]] = []
    if getattr(args, "labels", None):
        full = load_labels(args.labels)
        labels = {lab["account_id"]: lab["attack"] for lab in full}
    html_text = render(args, metrics, top, series, markers, max_score, labels, config,
                       campaign_rows(result.alerts, full))
    Path(args.report).write_text(html_text, encoding="utf-8")


def campaign_rows(alerts: list[Any], labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per campaign episode: id, linkage keys, members, first alert
    and, with labels, the labelled campaigns its members belong to and the
    delay from the earliest of their starts to the first alert.

    >>> from detectors.alerts import Alert
    >>> a = Alert("campaign", "firing", "error", 0.9, 160.0, 160.0, "s",
    ...           {"campaign_id": "c-1", "linkage_keys": ["pay:p"], "members": 2},
    ...           accounts=("x", "y"), account_count=2)
    >>> m = Alert("campaign_member", "firing", "warning", 0.9, 160.0, 160.0, "s",
    ...           {"campaign_id": "c-1"}, account_id="x")
    >>> rows = campaign_rows([a, m], [{"account_id": "x", "attack": "hydra",
    ...                                "campaign": "hydra-1", "start": 100.0}])
    >>> rows[0]["campaign_id"], rows[0]["members"], rows[0]["labelled"], rows[0]["delay_s"]
    ('c-1', 2, ['hydra-1'], 60.0)
    """
    label_of = {lab["account_id"]: lab for lab in labels}
    rows: dict[tuple[str, float], dict[str, Any]] = {}
    for a in alerts:
        details = a.details
        cid = details.get("campaign_id")
        if not cid or a.detector not in ("campaign", "campaign_member"):
            continue
        row = rows.get((cid, a.episode_start))
        if row is None:
            row = rows[(cid, a.episode_start)] = {
                "campaign_id": cid, "episode_start": a.episode_start, "first_alert": a.ts,
                "keys": [], "members": 0, "updates": 0, "resolved": None, "starts": [],
                "labelled": set()}
        if a.detector == "campaign_member":
            lab = label_of.get(a.account_id or "")
            if lab is not None:
                row["labelled"].add(str(lab.get("campaign") or lab["attack"]))
                row["starts"].append(float(lab["start"]))
            continue
        if a.status == "resolved":
            row["resolved"] = a.ts
            continue
        row["first_alert"] = min(row["first_alert"], a.ts)
        row["updates"] = max(row["updates"], a.revision)
        row["keys"] = list(details.get("linkage_keys") or details.get("cluster_keys") or [])
        row["members"] = max(row["members"], a.account_count)
    out = []
    for row in sorted(rows.values(), key=lambda r: (r["first_alert"], r["campaign_id"])):
        starts = row.pop("starts")
        row["delay_s"] = round(row["first_alert"] - min(starts), 3) if starts else None
        row["labelled"] = sorted(row["labelled"])
        out.append(row)
    return out


def _diverse(ranked: list[str], family: dict[str, str], n: int) -> list[str]:
    """Top ``n`` accounts by peak score, taking the best of each labelled family
    (or unlabelled) in turn, so one large campaign does not fill the page."""
    groups: dict[str, list[str]] = {}
    for acct in ranked:
        groups.setdefault(family.get(acct, "unlabelled"), []).append(acct)
    picked: list[str] = []
    while len(picked) < n and any(groups.values()):
        for members in groups.values():
            if members and len(picked) < n:
                picked.append(members.pop(0))
    return picked


def _fire_threshold(config: dict[str, Any]) -> float | None:
    from streams.service.detection import detector_config

    cfg = detector_config(config)
    value = getattr(cfg, "fire_threshold", None)
    return float(value) if value is not None else None


def render(args: argparse.Namespace, metrics: dict[str, Any], top: list[str],
           series: dict[str, dict[str, list[tuple[float, float]]]],
           markers: dict[str, list[tuple[float, str]]], max_score: dict[str, float],
           labels: dict[str, str], config: dict[str, Any],
           campaigns: list[dict[str, Any]] | None = None) -> str:
    esc = html.escape
    files = ", ".join(Path(f).name for f in args.files)
    cards = [
        ("events", f"{metrics['events']:,}"), ("accounts", f"{len(max_score):,}"),
        ("firing alerts", f"{metrics['alerts_firing']:,}"),
        ("bad lines", f"{metrics['bad_lines']:,}"),
        ("replay speed", f"{metrics['events_per_s']:,.0f} ev/s"),
    ]
    det = metrics.get("detection")
    if det:
        cards.append(("benign FP rate", f"{100 * det['benign']['overall']['fp_rate']:.2f}%"))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>distillwatch replay report</title><style>{CSS}</style></head><body>",
        "<header><h1>distillwatch replay report</h1>",
        f"<p>{esc(files)}</p></header><main>",
        "<section><h2>Summary</h2><div class='cards'>",
        *[f"<div class='card'><b>{esc(v)}</b>{esc(k)}</div>" for k, v in cards],
        "</div></section>",
    ]
    if det:
        parts.append("<section><h2>Detection against labels</h2><table><tr><th>attack family"
                     "</th><th>accounts</th><th>recall</th><th>median delay</th>"
                     "<th>p90 delay</th></tr>")
        for fam, row in det.get("attacks", {}).items():
            parts.append(f"<tr><td>{esc(fam)}</td><td>{row['accounts']}</td>"
                         f"<td>{row['recall']:.2f}</td><td>{_delay(row['delay_median_s'])}</td>"
                         f"<td>{_delay(row['delay_p90_s'])}</td></tr>")
        for fam, row in det.get("campaigns", {}).items():
            parts.append(f"<tr><td>{esc(fam)} campaigns</td><td>{row['campaigns']}</td>"
                         f"<td>{row['recall']:.2f} (accounts {row['account_recall']:.2f})</td>"
                         f"<td>{_delay(row['delay_median_s'])}</td><td></td></tr>")
        parts.append("</table><h3>Benign accounts</h3><table><tr><th>kind</th><th>accounts"
                     "</th><th>flagged</th><th>FP rate</th></tr>")
        benign = det["benign"]
        for kind, row in [*benign["by_kind"].items(), ("all benign", benign["overall"])]:
            parts.append(f"<tr><td>{esc(kind)}</td><td>{row['accounts']}</td>"
                         f"<td>{row['flagged']}</td><td>{100 * row['fp_rate']:.2f}%</td></tr>")
        parts.append("</table></section>")
    if campaigns:
        parts.append("<section><h2>Campaigns</h2><p class='meta'>One incident per campaign "
                     "episode (dedup_key <code>campaign:&lt;id&gt;</code>, or the key of the "
                     "account page it continues); delay from the "
                     "earliest labelled start of its members to its first alert.</p><table>"
                     "<tr><th>campaign</th><th>linkage keys</th><th>members</th>"
                     "<th>first alert (UTC)</th><th>updates</th><th>resolved</th>"
                     "<th>labelled</th><th>delay</th></tr>")
        for row in campaigns:
            keys = row["keys"]
            shown = ", ".join(keys[:6]) + (f" … (+{len(keys) - 6})" if len(keys) > 6 else "")
            parts.append(
                f"<tr><td><code>{esc(row['campaign_id'])}</code></td><td>{esc(shown)}</td>"
                f"<td>{row['members']}</td><td>{esc(format_ts(row['first_alert'])[:19])}</td>"
                f"<td>{row['updates']}</td>"
                f"<td>{esc(format_ts(row['resolved'])[:19]) if row['resolved'] else '-'}</td>"
                f"<td>{esc(', '.join(row['labelled'])) or '-'}</td>"
                f"<td>{_delay(row['delay_s'])}</td></tr>")
        parts.append("</table></section>")
    if labels or max_score:
        groups: dict[str, list[float]] = {"benign accounts": [], "attack accounts": []}
        for acct, score in max_score.items():
            groups["attack accounts" if acct in labels else "benign accounts"].append(score)
        if not labels:
            groups = {"benign accounts": list(max_score.values())}
        parts.append("<section><h2>Peak score per account</h2><p class='legend'>")
        for g in groups:
            colour = COLOURS["attack" if g.startswith("attack") else "benign"]
            parts.append(f"<span><i class='sw' style='background:{colour}'></i>{esc(g)} "
                         f"({len(groups[g]):,})</span>")
        parts.append("</p>" + _svg_hist(groups, _fire_threshold(config)) + "</section>")
    parts.append("<section><h2>Top alerted accounts</h2><p class='legend'>"
                 f"<span><i class='sw' style='background:{COLOURS['now']}'></i>now (15 min)</span>"
                 f"<span><i class='sw' style='background:{COLOURS['baseline']}'></i>own baseline"
                 f" (24 h)</span><span><i class='sw' style='background:{COLOURS['firing']}'></i>"
                 f"firing</span><span><i class='sw' style='background:{COLOURS['resolved']}'>"
                 "</i>resolved</span></p>")
    if not top:
        parts.append("<p>No account alerted.</p>")
    for acct in top:
        s = series.get(acct, {})
        label = f" — labelled <b>{esc(labels[acct])}</b>" if acct in labels else ""
        parts.append(f"<h3>{esc(acct)}</h3><p class='meta'>peak score "
                     f"{max_score.get(acct, 0):.2f}{label}</p><div class='acct'>")
        parts.append(_svg_lines({"now": s.get("ent", []), "baseline": s.get("ent_base", [])},
                                markers.get(acct, []), "topic entropy", "normalised 0-1",
                                fixed=(0.0, 1.0)))
        parts.append(_svg_lines({"now": s.get("rate", []), "baseline": s.get("rate_base", [])},
                                markers.get(acct, []), "request rate", "per minute, log",
                                log_scale=True))
        parts.append("</div>")
    parts.append("</section><section><h2>Configuration</h2><pre>"
                 + esc(_config_text(config)) + "</pre></section></main></body></html>")
    return "".join(parts)


def _config_text(config: dict[str, Any]) -> str:
    if not config:
        return "(packaged defaults)"
    return to_toml(config)


def _delay(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
