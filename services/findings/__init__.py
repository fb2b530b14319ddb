"""The daily findings of integrity engineers (missing data, 30 CFR 250.521 re-test, annulus
communication), judged by a periodic sweep over stored readings; run by the tasks service."""
