"""``python -m bench.ingest_latency.probe URL``: GET URL every 10 ms, one request at a time,
until stdin closes; then print the latencies (seconds) as one JSON list.

A process of its own, so that the client pushing the big requests (its HTTP parsing, its
JSON decoding of big answers) does not delay the probe and count as the server's latency.
"""

import json
import sys
import threading
import time

import httpx

POLL_S = 0.01


def main() -> int:
    url = sys.argv[1]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        client.get(url)  # connect before the first measured probe
        print("ready", flush=True)
        while not stop.is_set():
            t0 = time.perf_counter()
            r = client.get(url)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                print(f"probe answered {r.status_code}", file=sys.stderr)
                return 1
            time.sleep(POLL_S)
    print(json.dumps(latencies), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
