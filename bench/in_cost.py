"""SecantusDB's CPU per value of one `$in` read, by list length (not a test; docs/storage.md rule 8).

    python -m bench.in_cost [--documents 20000]

Starts SecantusDB as careline's embedded default runs it, stores `--documents` small documents and reads
them back by `_id` (`find_one`, then `$in` of 8 to 512 values) and by a multikey field (`$in` over
`memberIds`), and prints the database process's CPU per value looked up, with the core count and load.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import psutil
from pymongo import MongoClient

from bench.chat import _start_database, _stop


def main() -> None:
    """Print SecantusDB's CPU per looked-up value for each `$in` length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=20000)
    args = parser.parse_args()
    print(f"cpu_count={os.cpu_count()} loadavg={os.getloadavg()}")
    process, uri = _start_database(tempfile.mkdtemp(prefix="careline-in-cost-"), "0")
    database = psutil.Process(process.pid)
    try:
        users = MongoClient(uri)["in_cost"]["users"]
        ids = [f"u{i:06d}" for i in range(args.documents)]
        users.insert_many([{"_id": u, "role": "client", "name": u, "memberIds": [u, "x"]} for u in ids])
        users.create_index("memberIds")
        for field, lengths in (("_id", (1, 8, 16, 32, 64, 128, 512)), ("memberIds", (16, 32, 64, 512))):
            for n in lengths:
                reads = max(2, 4096 // n)
                before = sum(database.cpu_times()[:2])
                for r in range(reads):
                    start = (r * n) % (len(ids) - n)
                    list(users.find({field: {"$in": ids[start:start + n]}}).limit(n))
                used = sum(database.cpu_times()[:2]) - before
                print(f"{field} $in of {n:4d}: {1e6 * used / (reads * n):6.0f} us of database CPU per value")
    finally:
        _stop(process)


if __name__ == "__main__":
    main()
