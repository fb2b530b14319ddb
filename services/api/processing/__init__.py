"""What the api does with a request: the route handlers (admin, alerts, auth, derivation,
queries, resources), the generic CRUD router (``crud.py``), the events a handler queues in
its transaction (``outbox.py``) and the derived critical points (``derived.py``)."""
