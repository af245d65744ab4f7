"""Load benchmark of `POST /api/v1/chat` under gunicorn, on 127.0.0.1 only.

Starts gunicorn with the project's `gunicorn.conf.py` on a free local port (or uses --url pointing at
127.0.0.1), sends a bounded number of requests at 1, 4 and 16 concurrent clients, and prints p50/p95
latency, requests/s and the median per-stage breakdown reported by the service (`timings_ms`).

    .venv/bin/python bench/bench_chat.py [--requests 60] [--url http://127.0.0.1:8000]

It needs a prepared system (`make run` or `flask prepare` once).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 4, 16)
MESSAGES_FILE = ROOT / "data" / "tune" / "tune_queries.jsonl"
START_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESS_LOG": "/dev/null"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=2).ok:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("gunicorn did not become ready; run `flask prepare` first")


def _messages(limit: int) -> list[str]:
    with open(MESSAGES_FILE, encoding="utf-8") as fh:
        rows = [json.loads(line)["query"] for line in fh if line.strip()]
    return (rows * (limit // len(rows) + 1))[:limit]


def run_level(url: str, messages: list[str], clients: int) -> dict:
    def one(message: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = requests.post(f"{url}/api/v1/chat", json={"message": message}, timeout=120)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000, response.json().get("timings_ms", {})

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, messages))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    stages = {k for _, t in results for k in t}
    return {
        "clients": clients, "requests": len(results),
        "p50_ms": statistics.median(latencies), "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "rps": len(results) / elapsed,
        "stages_ms": {k: statistics.median(t.get(k, 0.0) for _, t in results) for k in sorted(stages)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="requests per concurrency level")
    parser.add_argument("--url", help="an already running server on 127.0.0.1")
    args = parser.parse_args()
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("this benchmark only targets the local machine")
    proc, url = (None, args.url) if args.url else start_gunicorn()
    try:
        messages = _messages(args.requests)
        requests.post(f"{url}/api/v1/chat", json={"message": "warm-up"}, timeout=120)
        print(f"POST /api/v1/chat at {url}, {args.requests} requests per level, "
              f"workers={os.environ.get('GUNICORN_WORKERS', 'default')}")
        print(f"{'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}  median stage ms")
        for clients in CONCURRENCY:
            r = run_level(url, messages, clients)
            stages = " ".join(f"{k}={v:.1f}" for k, v in r["stages_ms"].items())
            print(f"{r['clients']:>7} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['rps']:>7.1f}  {stages}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
