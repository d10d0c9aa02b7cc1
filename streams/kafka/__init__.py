"""Workarounds for Faust and aiokafka behaviour, each in one place and naming
the upstream behaviour it corrects."""
