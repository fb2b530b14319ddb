"""The integrity stream processor (faust worker)."""

import faust

from shared.faust_app import WorkerContext, make_faust_app
from shared.settings import Settings


def create_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    app, ctx = make_faust_app("integrity", settings)
    return app, ctx
