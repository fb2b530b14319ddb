"""Contracts between the services that are more than the event models of shared.events:
the one codec of the ``wims.readings`` wire form (:mod:`shared.contracts.readings`).
"""
