"""Persistence: the ORM models (each table declaring its owning service), the Alembic migrations and the events built from rows.

The top layer of `shared`: it may import infrastructure, domain and contracts.
"""
