"""Alert records and bundles shared by the sharing tests (unit and TAXII)."""

from __future__ import annotations

import json

from detectors.response import format_time
from streams.response.sharing import build_bundle

KEY = b"community-key-for-tests-000000001"
T0 = 1_771_840_800.0
MARKER = "ZQXV-PROMPT-MARKER"


def cluster_alert(key="pay:pm_secret_card", score=0.93, extra_details=None):
    details = {"cluster_key": key, "key_kind": key.split(":")[0],
               "reasons": ["shared_template", "synchronized"],
               "shared_keys": ["ip:203.0.113.0/24", "ua:harvest-client/1.0", "tmpl:deadbeef",
                               "org:org_internal", "lsh:0-0000abcd"],
               **(extra_details or {})}
    return {"alert_id": "c" * 32, "dedup_key": f"cluster:{key}", "status": "firing",
            "detector": "cluster", "severity": "critical", "score": score,
            "ts": format_time(T0 + 600), "episode_start": format_time(T0), "summary": "s",
            "details": details, "accounts": ["acct-m1", "acct-m2"], "account_count": 9}


def account_alert(account="acct-m1"):
    return {"alert_id": "a" * 32, "dedup_key": f"account:{account}", "status": "firing",
            "detector": "account", "severity": "error", "score": 0.91,
            "ts": format_time(T0 + 300), "episode_start": format_time(T0 + 300),
            "summary": "s", "account_id": account,
            "details": {"reasons": ["template", "elicitation"],
                        "prompt_fingerprints": ["0badc0de", "12345678"],
                        "top_topics": [[MARKER, 0.9]]}}


def bundle_objects(alerts, **kw):
    text = build_bundle(alerts, key=KEY, key_id="c1", **kw).serialize()
    return text, json.loads(text)["objects"]
