"""The Kafka plumbing both sides use: connection settings, clients, records, read-back.

The only package that imports kafka-python. `worker` builds its consumer-group source and
its sink on it; `training` (train --from-topic) and the demo read topics back with it.
"""
