"""On-call delivery: ``tail``, ``forward`` and the pure mappings of alert
records onto PagerDuty, Alertmanager and webhooks."""
