"""Contracts: what crosses a process boundary — the Kafka topics, the events on them (and the one Reading codec), the value sets they carry, and the dead-letter envelope.

The lowest layer: it imports nothing else of `shared`.
"""
