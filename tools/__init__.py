"""Clients of WIMS that are not services: the SCADA simulator and the demo seeding.

They talk to the services only through their public HTTP APIs (and the simulator reads the
SCADA tags from the database), so they live apart from the service packages.
"""
