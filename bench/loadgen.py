"""Load generator, run as its own process so it does not share Kirim's CPU time accounting: reads a
JSON plan on stdin ({"base": url, "concurrency": n, "deadline_s": s, "requests": [...]}) where each
request is {"method", "path", "headers", "body"}; keeps one HTTP/1.1 connection per thread; prints a
JSON result: per request status and latency in ms, and the wall time."""

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    plan = json.load(sys.stdin)
    base = urlsplit(plan["base"])
    requests = plan["requests"]
    results = [None] * len(requests)
    cursor = iter(range(len(requests)))
    take = threading.Lock()
    deadline = time.monotonic() + plan.get("deadline_s", 300)

    def worker():
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
        while time.monotonic() < deadline:
            with take:
                index = next(cursor, None)
            if index is None:
                break
            spec = requests[index]
            body = spec.get("body")
            raw = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else None)
            headers = {"Content-Type": "application/json", **spec.get("headers", {})}
            started = time.perf_counter()
            try:
                connection.request(spec["method"], spec["path"], body=raw, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
                status = 0
            results[index] = [status, (time.perf_counter() - started) * 1000]
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(plan["concurrency"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump({"wall_s": time.perf_counter() - began, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
