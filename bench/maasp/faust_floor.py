"""A faust agent that does nothing with its readings: the ceiling faust's own per-message
path puts on any faust worker, measured the same way as the MAASP worker (first to N-th
reading, same batch settings). Run by bench.maasp as a process; prints ``RATE <n/s>``."""

import os
import sys
import time
from typing import Any

import faust

from shared.infrastructure.settings import get_settings


def main() -> None:
    settings = get_settings()
    n = int(os.environ["BENCH_MAASP_N"])
    app = faust.App(
        f"bench-faust-floor-{time.time_ns()}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        datadir=str(settings.run_dir / "faust" / "bench-floor"),
    )
    topic = app.topic("wims.readings")
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for events in stream.take_events(
            settings.maasp_batch_size, within=settings.maasp_batch_within_s
        ):
            if seen["n"] == 0:
                seen["first"] = time.monotonic()
            seen["n"] += len(events)
            if seen["n"] >= n:
                rate = seen["n"] / (time.monotonic() - seen["first"])
                print(f"RATE {rate:.1f}", flush=True)
                os._exit(0)  # the figure is out; no need for a graceful faust shutdown

    from faust.worker import Worker

    (settings.run_dir / "faust").mkdir(parents=True, exist_ok=True)
    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    sys.exit(main())
