"""Writes one malformed message to a courier channel, the way a buggy producer would.

    python produce_bad.py --redis URL --namespace NS --channel DOMAIN.CHANNEL --kind KIND \
        [--schemas DIR]

KIND is one of:
  wrong_version    an envelope naming a schema version the channel does not have
                   (its newest + 1; read as the newest on forward-compatible channels)
  invalid_payload  a payload that violates its schema
  non_utf8         bytes that are not UTF-8 as the whole message
  wrong_field      a stream entry whose envelope is under field `msg`, not `m` (streams only)

Validation is skipped, but the keys and the publish script are courier's, so
the message reaches the queue. Prints one line
`{"kind": ..., "id": <message id> or null, "key": <idempotency key> or null}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

import redis

import courier_wire as wire

KINDS = ("wrong_version", "invalid_payload", "non_utf8", "wrong_field")


def key_fields_payload(channel: wire.Channel, version: int) -> wire.Json:
    """A payload with only its key and routing fields set: enough to derive a key and a partition."""
    properties = channel.schemas[version].get("properties", {})
    payload: wire.Json = {}
    for pointer in channel.key_pointers(version):
        name = pointer[1:]
        integer = properties.get(name, {}).get("type") == "integer"
        payload[name] = uuid.uuid4().int % 1_000_000 if integer else str(uuid.uuid4())
    if channel.partition_field is not None:
        values = channel.partition_values or ("0",)
        payload[channel.partition_field[1:]] = values[0]
    return payload


def write(producer: wire.Producer, kind: str) -> tuple[str | None, str | None]:
    """Writes one message of `kind`; returns its message id and key, when it has them."""
    channel = producer.channel
    payload = key_fields_payload(channel, channel.newest)
    key = wire.idempotency_key(payload, channel.key_pointers(channel.newest))
    partition = wire.route(channel, payload)
    if kind == "non_utf8":
        published = producer.publish_text(b"\xff\xfe not json", str(uuid.uuid4()), f"bad-{uuid.uuid4()}", partition)
        assert published.outcome == "published"
        return None, None
    version = channel.newest + 1 if kind == "wrong_version" else channel.newest
    if kind == "invalid_payload":
        payload["not_in_any_schema"] = [None]
        if wire.schema_errors(channel.validators[version], payload) is None:
            raise wire.WireError(f"could not make a payload that {channel.schema_name} refuses")
    envelope = wire.new_envelope(channel, version, payload, key, producer.name)
    if kind == "wrong_field":
        if channel.transport != "stream":
            raise wire.WireError(f"wrong_field needs a stream channel; {channel.qualified} is a {channel.transport}")
        stream = wire.Keys(producer.namespace, channel.qualified, partition).part("stream")
        producer.client.xadd(stream, {"msg": wire.encode(envelope)})
        producer.client.pexpire(stream, channel.max_age_ms)
        return envelope["id"], key
    published = producer.publish_text(wire.encode(envelope), envelope["id"], key, partition)
    return published.id, key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="Redis URL, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True, help="key namespace shared with the consumers")
    parser.add_argument("--channel", required=True, help="<domain>.<channel>")
    parser.add_argument("--kind", required=True, choices=KINDS, help="what is wrong with the message")
    parser.add_argument("--schemas", type=Path, default=wire.DEFAULT_SCHEMAS, help="schemas folder")
    args = parser.parse_args()
    try:
        channel = wire.load_channel(args.channel, args.schemas)
        producer = wire.Producer(redis.Redis.from_url(args.redis), args.namespace, channel, "produce-bad")
        message_id, key = write(producer, args.kind)
    except (OSError, redis.RedisError, wire.WireError) as e:
        print(f"produce_bad: {args.channel}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"kind": args.kind, "id": message_id, "key": key}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
