"""Publishes JSON lines from stdin to a courier channel, as a courier producer would.

    python produce.py --redis URL --namespace NS --channel DOMAIN.CHANNEL \
        [--schemas DIR] [--producer NAME] < input.jsonl

Each input line is `{"payload": {...}, "version": N, "priority": P}`;
`version` defaults to the newest schema; `priority` (priority channels
only) may be left out, which courier orders as 0. Prints one line per message:
`{"outcome": "published" | "duplicate", "id": "<message id>", "key": "<idempotency key>"}`,
where a duplicate's id is the first message's. Exits 1 on the first error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import redis

import courier_wire as wire


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True, help="key namespace shared with the consumers")
    parser.add_argument("--channel", required=True, help="<domain>.<channel>")
    parser.add_argument("--schemas", type=Path, default=wire.DEFAULT_SCHEMAS, help="schemas folder")
    parser.add_argument("--producer", help="the envelope's producer (default <pid>-<8 hex>)")
    args = parser.parse_args()
    try:
        channel = wire.load_channel(args.channel, args.schemas)
        producer = wire.Producer(redis.Redis.from_url(args.redis), args.namespace, channel, args.producer)
        for number, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                try:
                    item = json.loads(line)
                except ValueError as e:
                    raise wire.WireError(f"not JSON: {e}") from e
                if not isinstance(item, dict) or not isinstance(item.get("payload"), dict):
                    raise wire.WireError('expected {"payload": {...}, "version": N}')
                published = producer.publish(item["payload"], item.get("version"), priority=item.get("priority"))
            except (ValueError, wire.WireError) as e:
                raise wire.WireError(f"stdin line {number}: {e}") from e
            print(json.dumps({"outcome": published.outcome, "id": published.id, "key": published.key}),
                  flush=True)
    except (OSError, redis.RedisError, wire.WireError) as e:
        print(f"produce: {args.channel}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
