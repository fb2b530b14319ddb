"""The ingest HTTP service (FastAPI)."""

from fastapi import FastAPI

from shared.http_app import make_http_app
from shared.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return make_http_app("WIMS ingest", settings)
