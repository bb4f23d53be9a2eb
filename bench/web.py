"""Benchmark: page latency of `bwv serve` on the force-sized synthetic catalogue.

The catalogue is bench/report.py's (100,000 incidents, 300,000 clips, 1,000 officers;
`generate` is reused from there). A real `bwv serve` process is started on 127.0.0.1,
and 20 concurrent clients (httpx, each signed in) ask for the incidents list, an
incident page and a clip page; p50 and p95 latency of each are printed beside the time
of `bwv report --format json` on the same catalogue, measured in the same run (also a
list filtered by verdict and, where the tree has it, the consistency view). The
first incidents list judges the whole catalogue (kept until it changes) and is printed
on its own. Goal from the issue: p95 under 300 ms.

`--baseline TREE` first measures the `bwv serve` of another source tree (e.g. a git
worktree of an older commit) over the same catalogue with the same clients, so a before
and after come from one run on one machine; `--catalogue DIR` keeps the generated
catalogue in DIR and reuses it next time.

    .venv/bin/python bench/web.py                 # full size
    .venv/bin/python bench/web.py --scale 0.1     # a quick look
    .venv/bin/python bench/web.py --baseline /tmp/bwv-old --catalogue /tmp/bench-web
    .venv/bin/python bench/web.py --workers 2      # also with two server processes
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import quantiles

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from report import Sizes, _bwv, _link, generate

from bwv.core.db import database_url, get_engine
from bwv.services.users import add_user

CLIENTS = 20
VERDICTS = ("non_compliant", "needs_review", "compliant", "not_applicable")
GROUPINGS = ("officer", "team", "station", "type", "month")
PASSWORD = "benchmark password"


def main() -> None:
    args = _arguments()
    sizes = Sizes(int(100_000 * args.scale), int(300_000 * args.scale),
                  max(20, int(1_000 * args.scale)))  # fmt: skip
    folder = args.catalogue or Path(tempfile.mkdtemp(prefix="bwv-bench-web-"))
    try:
        run(folder, sizes, args)
    finally:
        if args.catalogue is None:
            shutil.rmtree(folder, ignore_errors=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k incidents")
    parser.add_argument("--requests", type=int, default=10, help="per client and page")
    parser.add_argument("--baseline", type=Path, help="source tree measured first, as before")
    parser.add_argument("--catalogue", type=Path, help="keep (and reuse) the catalogue here")
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure this tree's `bwv serve --workers N`")  # fmt: skip
    return parser.parse_args()


def run(folder: Path, sizes: Sizes, args: argparse.Namespace) -> None:
    database = folder / "bench.db"
    if not database.exists():
        folder.mkdir(parents=True, exist_ok=True)
        engine = get_engine(database_url(str(database)))
        generate(engine, sizes, random.Random(7))
        _link(engine)
        add_user("bench", "evidence_officer", PASSWORD, engine=engine, actor="bench")
    print(f"cores: {os.cpu_count()}  {sizes.incidents:,} incidents, {sizes.clips:,} clips")
    print(f"bwv report --format json (CLI, same catalogue): {_cli_report(database, folder):.2f} s")
    here = Path(__file__).resolve().parents[1]
    runs = [("before", args.baseline, 1)] if args.baseline else []
    runs.append(("this tree", here, 1))
    if args.workers > 1:
        runs.append((f"this tree, --workers {args.workers}", here, args.workers))
    for name, tree, workers in runs:
        print(f"\n{name}: bwv serve from {tree}")
        _serve_and_measure(database, tree, args.requests, workers)


def _serve_and_measure(database: Path, tree: Path, requests: int, workers: int) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", "from bwv.cli import run; run()", "--db", str(database),
               "serve", "--port", str(port)]  # fmt: skip
    command += ["--workers", str(workers)] if workers > 1 else []
    server = subprocess.Popen(command, env=env, cwd=tree)  # `-c` imports from the cwd first
    try:
        _wait_for(port)
        _measure(f"http://127.0.0.1:{port}", requests)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cli_report(database: Path, folder: Path) -> float:
    command = [_bwv(), "--db", str(database), "--actor", "bench", "report", "--format", "json",
               "--output", str(folder / "report.json")]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - began


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(600):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("bwv serve did not start")


def _client(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=120)
    answer = client.post("/login", data={"name": "bench", "password": PASSWORD})
    if answer.status_code != 303:
        raise SystemExit(f"login failed: {answer.status_code}")
    return client


def _measure(base: str, requests: int) -> None:
    clients = [_client(base) for _ in range(CLIENTS)]
    first = clients[0]
    began = time.perf_counter()  # every client at once, so every server process judges
    with ThreadPoolExecutor(CLIENTS) as pool:
        listings = list(pool.map(lambda client: client.get("/incidents").text, clients))
    listing = listings[0]
    first_s = time.perf_counter() - began
    refs = sorted(set(_between(listing, '<a href="/incidents/', '"')))[:20]
    clip_ids = list(range(1, 1 + CLIENTS * requests))
    pages = {
        "incidents list": lambda i: f"/incidents?page={1 + i % 50}",
        "incident page": lambda i: f"/incidents/{refs[i % len(refs)]}",
        "clip page": lambda i: f"/clips/{clip_ids[i % len(clip_ids)]}",
        "filtered list": lambda i: f"/incidents?verdict={VERDICTS[i % 4]}&page={1 + i % 10}",
    }
    if 'id="consistency"' in first.get("/incidents?by=team").text:  # not in older trees
        pages["consistency view"] = lambda i: f"/incidents?by={GROUPINGS[i % 5]}"
    print(f"first incidents list, {CLIENTS} at once (judges the catalogue): {first_s:.2f} s")
    print(f"{'page':<18} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8}  goal p95 < 300 ms")
    for name, path in pages.items():
        times = _concurrently(clients, path, requests)
        cuts = quantiles(times, n=100)
        verdict = "ok" if cuts[94] < 300 else "SLOW"
        print(f"{name:<18} {len(times):>8} {cuts[49]:>8.1f} {cuts[94]:>8.1f}  {verdict}")


def _concurrently(clients: list[httpx.Client], path: object, requests: int) -> list[float]:
    def one_client(index: int) -> list[float]:
        spent = []
        for n in range(requests):
            began = time.perf_counter()
            answer = clients[index].get(path(index * requests + n))  # type: ignore[operator]
            spent.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 200:
                raise SystemExit(f"{answer.request.url}: {answer.status_code}")
        return spent

    with ThreadPoolExecutor(len(clients)) as pool:
        return [t for times in pool.map(one_client, range(len(clients))) for t in times]


def _between(text: str, start: str, end: str) -> list[str]:
    return [part.split(end, 1)[0] for part in text.split(start)[1:]]


if __name__ == "__main__":
    main()
