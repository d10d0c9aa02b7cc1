"""The stream service: the Faust app and its agents, the message path (decode,
validate, dead-letter), checkpoints, metrics, web views and the worker."""
