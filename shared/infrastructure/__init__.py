"""Infrastructure: settings, the database engine, Kafka clients, the faust app and its compatibility layer, the HTTP app, observability, retries and authentication primitives.

Imports contracts only (never domain rules, persistence or a service).
"""
