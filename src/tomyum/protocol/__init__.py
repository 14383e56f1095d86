"""Kafka's bytes and nothing else: framing, request/response codecs, record batches. No I/O."""
