"""What SFTP run storage costs over the local folder: one 2,000-record chunk, process + commit.

    .venv/bin/python bench/storage_overhead.py [--rounds 2]

Each round loads the same 2,000 real records (shared corpus, LC books) into a fresh emulator
and state store twice, once with the local folder as storage and once with a loopback SFTP
server (asyncssh, the delivery tests' server), and prints wall times. The processing and
committing workers have empty homes of their own in the SFTP case, so every landing file and
staging file is really downloaded. A measurement, not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymarc

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "include"), str(REPO / "plugins")]

from catalog_sync.changes.state import StateStore  # noqa: E402
from catalog_sync.config import load_vendors  # noqa: E402
from catalog_sync.ils import ILSSettings, open_client  # noqa: E402
from catalog_sync.leases import LeaseManager  # noqa: E402
from catalog_sync.models import ChunkRef, ChunkReport  # noqa: E402
from catalog_sync.paths import layout  # noqa: E402
from catalog_sync.pipeline.fetch import fetch_to_storage  # noqa: E402
from catalog_sync.pipeline.stored import (  # noqa: E402
    commit_stored_chunk,
    process_stored_chunk,
    split_stored_file,
)
from catalog_sync.services import start_emulator, start_redis  # noqa: E402
from catalog_sync.storage import SharedStorage  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "loc-marc-open-access"
RECORDS = 2000


def delivery(path: Path) -> None:
    with (CORPUS / "BooksAll.2016.part01.utf8.first5000.mrc").open("rb") as fh:
        records = list(itertools.islice(pymarc.MARCReader(fh), RECORDS))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(r.as_marc() for r in records))


class LoopbackSftp:
    """The delivery tests' asyncssh SFTP server on a loopback port, outside pytest."""

    def __init__(self, root: Path) -> None:
        import asyncssh
        from tests.sftp_server import ServerState, _sftp_factory, _SshServer

        root.mkdir(parents=True)
        self.root = root
        state = ServerState(root=root)
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.listen(
                "127.0.0.1", 0, server_host_keys=[key], server_factory=lambda: _SshServer(state),
                sftp_factory=_sftp_factory(state), allow_scp=False,
            )  # fmt: skip

        self.acceptor = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.acceptor.get_port()
        public = key.export_public_key("openssh").decode().split()
        self.known_hosts = root.parent / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")

    def stop(self) -> None:
        async def close() -> None:
            self.acceptor.close()
            await self.acceptor.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def one_load(
    work: Path, homes: dict[str, Path], storages: dict[str, SharedStorage], redis_url: str
) -> dict[str, float]:
    """Fetch + split (untimed), then process and commit the one chunk, timed."""
    vendor = load_vendors()["demo"].model_copy(update={"records_per_chunk": RECORDS})
    emulator = start_emulator(work / "emu", db=work / "emu" / "ils.db")
    state = StateStore(f"sqlite:///{work / 'state.db'}")
    try:
        fetched = fetch_to_storage(vendor, layout(homes["fetcher"]), storages["fetcher"], state)
        (landed,) = fetched.files
        (ref,) = split_stored_file(landed, storages["fetcher"], RECORDS, 1024)
        t0 = time.perf_counter()
        report = process_stored_chunk(
            ref, vendor, layout(homes["processor"]), storages["processor"], state, "run-1"
        )
        t1 = time.perf_counter()

        async def commit() -> None:
            ils = ILSSettings(
                name="ils_default", base_url=emulator.url, username="catalog",
                password="catalog-demo",
            )  # fmt: skip
            async with open_client(ils) as client, LeaseManager.from_url(redis_url) as leases:
                result = await commit_stored_chunk(
                    report, vendor, layout(homes["committer"]), storages["committer"], client,
                    state, "run-1", leases=leases,
                )  # fmt: skip
            assert result.created == report.accepted, result

        c1 = time.process_time()
        asyncio.run(commit())
        t2 = time.perf_counter()
        times = {
            "process_s": t1 - t0,
            "commit_s": t2 - t1,
            "commit_cpu_s": time.process_time() - c1,  # this process only (not the emulator)
            "total_s": t2 - t0,
        }
        if storages["processor"].shared:
            times.update(storage_steps(work / "fresh", storages["processor"], ref, report))
    finally:
        emulator.stop()
    return times


def storage_steps(
    home: Path, like: SharedStorage, ref: ChunkRef, report: ChunkReport
) -> dict[str, float]:
    """The storage work alone, on a worker with an empty home: what SFTP adds to a chunk."""
    storage = SharedStorage(work=home, fs=like.fs, base=like.base, url=like.url)
    t0 = time.perf_counter()
    storage.landing_copy(ref.file_path, ref.verify_sha256)  # download + verify
    t1 = time.perf_counter()
    storage.landing_copy(ref.file_path, ref.verify_sha256)  # cached: verify only
    t2 = time.perf_counter()
    staged = storage.fetch(report.staging_path)
    t3 = time.perf_counter()
    copy = staged.with_name("copy.jsonl")
    copy.write_bytes(staged.read_bytes())
    t4 = time.perf_counter()
    storage.publish(copy, move=True)  # upload under a temporary key + rename
    t5 = time.perf_counter()
    return {
        "landing_download_verify_s": t1 - t0,
        "landing_cached_verify_s": t2 - t1,
        "staging_fetch_s": t3 - t2,
        "staging_publish_s": t5 - t4,
        "landing_bytes": float(Path(storage.local_path(ref.file_path)).stat().st_size),
        "staging_bytes": float(staged.stat().st_size),
    }


WORKERS = ("fetcher", "processor", "committer")


def main() -> None:
    global RECORDS
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--records", type=int, default=RECORDS)
    args = parser.parse_args()
    RECORDS = args.records
    logging.getLogger("catalog_sync.ils.requests").setLevel(logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    from tests.sftp_server import PASSWORD, USER

    tmp = Path(tempfile.mkdtemp(prefix="storage-overhead-"))
    redis = start_redis(tmp / "redis")
    server = LoopbackSftp(tmp / "sftp" / "root")
    os.environ["AIRFLOW_CONN_BENCH_STORAGE"] = json.dumps({
        "conn_type": "sftp", "host": "127.0.0.1", "port": server.port, "login": USER,
        "password": PASSWORD, "extra": {"known_hosts": str(server.known_hosts)},
    })  # fmt: skip
    from catalog_sync_airflow.runtime import run_storage

    results: dict[str, list[dict[str, float]]] = {"local": [], "sftp": []}
    try:
        for n in range(args.rounds):
            # Alternate which goes first: the machine's load drifts between loads.
            for mode in ("local", "sftp") if n % 2 == 0 else ("sftp", "local"):
                work = tmp / f"{mode}-{n}"
                if mode == "local":  # one machine: one home, storage is that folder
                    homes = dict.fromkeys(WORKERS, work / "home")
                    storages = {w: SharedStorage.local(h) for w, h in homes.items()}
                    inbox = work / "home" / "inbox" / "demo"
                else:  # three workers with empty homes of their own
                    homes = {w: work / w for w in WORKERS}
                    for h in homes.values():
                        h.mkdir(parents=True)
                    store = f"store-{n}"
                    storages = {
                        w: run_storage(h, f"sftp:///{store}", "bench_storage")
                        for w, h in homes.items()
                    }
                    inbox = server.root / store / "inbox" / "demo"
                delivery(inbox / "delivery.mrc")
                results[mode].append(one_load(work, homes, storages, redis.url))
                print(mode, n, {k: round(v, 3) for k, v in results[mode][-1].items()}, flush=True)
    finally:
        server.stop()
        redis.stop()
    for mode, runs in results.items():
        med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[-1]}
        print(f"{mode}: median of {len(runs)} rounds: {med}")


if __name__ == "__main__":
    main()
