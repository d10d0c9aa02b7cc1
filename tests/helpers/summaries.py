"""Account summaries for the cluster stage's tests: a benign organisation
(shared card, range, UA, org; varied prompts) and a hydra campaign (shared
card/range/UA, synchronized start, campaign templates)."""

from __future__ import annotations

from detectors.cluster import AccountSummary, ClusterStage

T0 = 1_771_840_800.0  # 2026-02-23T10:00:00Z

TOPICS = [
    "coding/python",
    "writing/email",
    "math/algebra",
    "support/customer",
    "translation/general",
    "data/analysis",
    "coding/go",
    "science/biology",
]


def summary(acct, ts, first_ts, keys, top, share, fps, tmpl, elic, flat=0.3, rate=0.3, score=0.2):
    return AccountSummary(
        acct,
        ts,
        first_ts,
        tuple(keys),
        ((top, share),),
        tuple(fps),
        tmpl,
        elic,
        flat,
        rate,
        score,
        20,
    )


def org_summaries(rng, n, rounds=24, start=T0):
    """An organisation: shared card, office range, UA and org; varied prompts,
    diverse topics, diurnal, each member on its own schedule."""
    keys = ("pay:pm_org", "ip:198.51.100.0/24", "org:org_1", "ua:lumen-python/1.40.0")
    out = []
    for r in range(rounds):
        for i in range(n):
            ts = start + 7200 + r * 300 + rng.uniform(0, 299)
            fps = [rng.getrandbits(32) for _ in range(8)]
            topic = rng.choice(TOPICS)
            out.append(
                summary(
                    f"org-{i}",
                    ts,
                    start + rng.uniform(0, 600),
                    keys,
                    topic,
                    rng.uniform(0.2, 0.5),
                    fps,
                    rng.uniform(0.0, 0.15),
                    rng.uniform(0.0, 0.04),
                    flat=rng.uniform(0.3, 0.6),
                    rate=rng.uniform(0.02, 0.3),
                    score=rng.uniform(0.0, 0.2),
                )
            )
    out.sort(key=lambda s: s.ts)
    return out


def hydra_summaries(rng, n, rounds=6, start=T0 + 4 * 3600, cover=False):
    """A campaign: members share a card or two, a range, a UA; they start within
    minutes of each other and carry the campaign's template fingerprints."""
    tpl = [0x1234ABCD, 0x0BADF00D]
    out = []
    for r in range(rounds):
        for i in range(n):
            keys = (f"pay:pm_h{i % 2}", "ip:203.0.113.0/24", "ua:aiohttp/3.9.5")
            ts = start + r * 300 + rng.uniform(0, 299)
            fps = [rng.choice(tpl)] + [rng.getrandbits(32) for _ in range(5 if cover else 1)]
            first = T0 if cover else start + rng.uniform(0, 300)
            top = "coding/rust" if not cover or rng.random() < 0.8 else rng.choice(TOPICS)
            out.append(
                summary(
                    f"hydra-{i}",
                    ts,
                    first,
                    keys,
                    top,
                    0.4 if cover else 0.95,
                    fps,
                    0.3 if cover else 0.8,
                    0.35 if cover else 0.5,  # elicitation (ramp 0.1..0.4 since issue 18)
                    rate=0.3,
                    score=0.3,
                )
            )
    out.sort(key=lambda s: s.ts)
    return out


def run_summaries(stage_or_det, summaries):
    alerts = []
    for s in summaries:
        if isinstance(stage_or_det, ClusterStage):
            alerts.extend(stage_or_det.process(s))
        else:
            for k in s.keys:
                alerts.extend(stage_or_det.process(k, s))
    return alerts
