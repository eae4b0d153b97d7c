"""Takes, checks and settles messages of a courier channel, as a courier consumer would.

    python consume.py --redis URL --namespace NS --channel DOMAIN.CHANNEL \
        --group G --consumer NAME --count N --timeout-ms T [--schemas DIR]

Runs until N messages were settled or T ms passed. Each message goes through
the checks of docs/protocol.md section 7 (envelope against
schemas/courier/envelope.v1.json, payload against its version's schema,
JSON Schema draft 2020-12 with formats asserted). A message that passes is
printed as `{"id", "key", "schema", "version", "payload"}` and settled
`done`; one already done by the group is settled `skip` and noted on
stderr; one that fails is dead-lettered with the check's reason, which is
written to stderr, and the exit status is then 1. The group names the
consumer group on streams and the done marks on every transport.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import redis

import courier_wire as wire


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True, help="key namespace shared with the producers")
    parser.add_argument("--channel", required=True, help="<domain>.<channel>")
    parser.add_argument("--group", required=True, help="consumer group (of its own on partitioned channels)")
    parser.add_argument("--consumer", required=True, help="this consumer's name, unique in the group")
    parser.add_argument("--count", type=int, required=True, help="stop after settling this many messages")
    parser.add_argument("--timeout-ms", type=int, required=True, help="stop after this long in any case")
    parser.add_argument("--schemas", type=Path, default=wire.DEFAULT_SCHEMAS, help="schemas folder")
    args = parser.parse_args()
    rejected = 0
    try:
        channel = wire.load_channel(args.channel, args.schemas)
        consumer = wire.Consumer(redis.Redis.from_url(args.redis), args.namespace, channel,
                                 args.group, args.consumer)
        consumer.start()
        deadline = time.monotonic() + args.timeout_ms / 1000
        settled = 0
        while settled < args.count and time.monotonic() < deadline:
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            for delivery in consumer.take(args.count - settled, left_ms):
                verdict = consumer.check(delivery)
                where = channel.qualified + (f"#{delivery.partition}" if delivery.partition else "")
                where += f" entry {delivery.handle.decode()}" if consumer.streams else " (held message)"
                if verdict.action == "dead":
                    assert verdict.reason is not None and verdict.error is not None
                    outcome = consumer.dead(delivery, verdict.reason, verdict.error)
                    rejected += 1
                    print(f"consume: {where}: dead-lettered ({outcome}) as {verdict.reason}: {verdict.error}",
                          file=sys.stderr)
                elif verdict.action == "skip":
                    assert verdict.envelope is not None
                    outcome = consumer.skip(delivery, verdict.envelope)
                    print(f"consume: {where}: key {verdict.envelope['key']} already done ({outcome})",
                          file=sys.stderr)
                else:
                    envelope = verdict.envelope
                    assert envelope is not None
                    print(json.dumps({"id": envelope["id"], "key": envelope["key"], "schema": envelope["schema"],
                                      "version": envelope["version"], "payload": envelope["payload"]}),
                          flush=True)
                    outcome = consumer.done(delivery, envelope)
                    if outcome != "ok":
                        print(f"consume: {where}: settlement refused ({outcome})", file=sys.stderr)
                settled += 1
        if settled < args.count:
            print(f"consume: {channel.qualified}: {settled} of {args.count} messages in {args.timeout_ms} ms",
                  file=sys.stderr)
    except (OSError, redis.RedisError, wire.WireError) as e:
        print(f"consume: {args.channel}: {e}", file=sys.stderr)
        return 1
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
