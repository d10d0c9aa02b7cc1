"""Workarounds for Faust and aiokafka behaviour, each in one place and naming
the upstream behaviour it corrects: every touch of their private API is here.

- :mod:`.consumer`: the replaced ``consumer.commit`` (state before every
  commit) and reads of the consumer's private offsets and the memory store's
  key partitions;
- :mod:`.offsets`: Faust's commit-offset rule without its duplicate-ack stall;
- :mod:`.flush`: commit only what the producer buffer really sent;
- :mod:`.fetch_pacing`: aiokafka's empty fetches paced.
"""
