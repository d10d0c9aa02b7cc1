"""The embedded Kafka-compatible broker, its command, and the demo traffic of
``distillwatch run``."""
