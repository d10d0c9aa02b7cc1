"""The service's three Faust agents, one module each; ``streams.service.app``
declares the topics and tables and attaches them:

- :mod:`.account` (agent ``detect``): events → per-account detectors → account
  alerts, dead letters, account summaries;
- :mod:`.cluster` (agent ``clusters``): account summaries → linkage-key
  clusters → cluster alerts;
- :mod:`.campaign` (agent ``campaigns``): account and cluster alerts → one
  incident per campaign → the alerts topic.

Each agent is a small class holding what it uses; its ``run`` is the agent
body. Every body waits while a checkpoint writes state and brackets each
message with ``enter``/``leave`` (streams.service.checkpoint explains why).
"""
