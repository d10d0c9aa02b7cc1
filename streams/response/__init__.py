"""Responding and sharing: operator decisions on proposed actions, the
reference enforcer, STIX 2.1 / TAXII 2.1 indicators."""
