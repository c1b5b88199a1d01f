#!/usr/bin/env python3
"""Schema registry throughput against a running `weir serve`: registrations per second (each
one a `_schemas` transaction: InitProducerId, produce, EndTxn, applied by the tail) and
lookups by id per second (served from memory), over one keep-alive HTTP connection.

Usage: python3 bench/schema_registry.py http://127.0.0.1:8081 [registrations] [lookups]
"""

import json
import sys
import time
import uuid

import requests

HEADERS = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8081"
    registrations = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    lookups = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    session = requests.Session()
    run = uuid.uuid4().hex[:8]
    ids = []
    started = time.perf_counter()
    for i in range(registrations):
        schema = {"type": "record", "name": f"R{run}x{i}", "fields": [{"name": "a", "type": "int"}]}
        response = session.post(
            f"{url}/subjects/bench-{run}-{i}/versions",
            data=json.dumps({"schema": json.dumps(schema)}),
            headers=HEADERS,
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    register_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(lookups):
        session.get(f"{url}/schemas/ids/{ids[i % len(ids)]}").raise_for_status()
    lookup_s = time.perf_counter() - started
    print(f"registrations: {registrations} in {register_s:.2f} s = {registrations / register_s:.0f}/s")
    print(f"lookups by id: {lookups} in {lookup_s:.2f} s = {lookups / lookup_s:.0f}/s")


if __name__ == "__main__":
    main()
