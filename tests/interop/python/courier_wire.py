"""A Python client of courier's wire protocol, written from docs/protocol.md.

It publishes and consumes courier messages the way courier itself does, so
that a Python process can take part in a courier deployment: every rule
below is the document's, and the section that states it is named beside the
code. The atomic steps are courier's own Lua scripts (common.lua, a newline,
then the operation's file), so their SHAs are courier's.

# Layout

- Settings and schemas: `Channel`, `load_channel`, `duration_ms`.
- Keys (section 1): `Keys`.
- The envelope (section 2): `new_envelope`, `encode`, `timestamp`,
  `parse_time`, `parse_record`.
- Idempotency key and routing (sections 3, 4): `idempotency_key`, `route`,
  `fnv1a_64`.
- Scripts: `Scripts`.
- Publishing (6.1): `Producer`.
- Consuming (6.2, 6.3, 6.5, 7): `Consumer`, `Delivery`, `Verdict`.

What it leaves out, all described in the document: the partition leases of
1.2 (so read a partitioned channel under a group of your own), the reaper
of dead list consumers (6.6), SLA sweeps (6.7), the pause switch, rate
limits, circuit breakers, `lost_by_trim` counting, Pub/Sub subscribing and
forgetting idle stream consumers.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, cast

import jsonschema
import redis
from redis.commands.core import Script

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SCHEMAS = REPO / "schemas"
DEFAULT_LUA = REPO / "crates" / "courier" / "lua"

# Fixed by the protocol, not by channels.json (sections 2.5, 5, 6.5).
DLQ_TTL_MS = 2_592_000_000
DLQ_MAX_LEN = 100_000
MOVE_DUE_CHUNK = 100
# The latest instant an envelope may name (2.1): expiry saturates there.
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
# Compatibilities under which a version newer than the reader's newest is
# read as its newest (section 7, check 6).
READS_NEWER = {"forward", "forward_transitive", "full", "full_transitive"}
# A stream entry's envelope field and history field (2.4).
FIELD_ENVELOPE, FIELD_HISTORY = b"m", b"h"

Json = dict[str, Any]
# Stream entries as redis-py returns them from a client without decode_responses.
Entries = list[tuple[bytes, "dict[bytes, bytes] | None"]]
Transport = Literal["stream", "list", "priority", "pubsub"]


class WireError(Exception):
    """A message, setting or name that the protocol refuses."""


class ChannelFull(WireError):
    """The publish found the channel at its `max_depth` (6.1, step 1)."""


# --- Settings and schemas ---------------------------------------------------

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """A channels.json duration ("200ms", "30s", "2h") in whole milliseconds."""
    match = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)", text)
    if not match or int(match[1]) == 0:
        raise WireError(f"{text!r} is not a duration of at least 1 ms")
    return int(match[1]) * _UNIT_MS[match[2]]


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time with a `T` (2.1), as an aware datetime."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micros = int((match[7] or "0")[:6].ljust(6, "0"))
    zone = match[8].upper()
    offset = timedelta(0) if zone == "Z" else timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    if zone[0] == "-":
        offset = -offset
    # A leap second (:60) is valid RFC 3339; Python's datetime has no room for it.
    return datetime(year, month, day, hour, minute, min(second, 59), micros, timezone(offset))


def _format_checker() -> jsonschema.FormatChecker:
    """Formats asserted as courier asserts them (section 7, check 3).

    jsonschema checks `date-time` only with an extra package installed and
    otherwise passes every string silently, so this checker adds its own.
    """
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(instance: object) -> bool:
        return not isinstance(instance, str) or parse_time(instance) is not None

    return checker


FORMATS = _format_checker()


def _validator(schema: Json) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def schema_errors(validator: jsonschema.Draft202012Validator, instance: object) -> str | None:
    """Every error of `instance`, each with its JSON pointer, or None if it is valid."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    return "; ".join(
        f"{'/' + '/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors
    )


@dataclass(frozen=True)
class Channel:
    """One channel's contract: its settings with courier's defaults, and its message schemas."""

    domain: str
    name: str
    message: str
    transport: Transport
    compatibility: str
    ttl_ms: int
    visibility_timeout_ms: int
    dedup_window_ms: int
    max_attempts: int
    backoff_initial_ms: int
    backoff_max_ms: int
    backoff_multiplier: float
    max_age_ms: int
    # 0 when unset, as the publish script takes it.
    max_len: int
    max_depth: int
    sla_ms: int
    # The payload field that routes, and either its named values or a bucket count.
    partition_field: str | None
    partition_values: tuple[str, ...] | None
    partition_buckets: int | None
    # Message schema per version, and their validators.
    schemas: dict[int, Json]
    validators: dict[int, jsonschema.Draft202012Validator]
    envelope_validator: jsonschema.Draft202012Validator

    @property
    def qualified(self) -> str:
        """`<domain>.<channel>`, as in key hash tags and dead letters."""
        return f"{self.domain}.{self.name}"

    @property
    def schema_name(self) -> str:
        """`<domain>.<message>`, the envelope's `schema` on this channel."""
        return f"{self.domain}.{self.message}"

    @property
    def newest(self) -> int:
        return max(self.schemas)

    def partitions(self) -> list[str | None]:
        """Every partition name, or `[None]` for an unpartitioned channel (1.2)."""
        if self.partition_values is not None:
            return list(self.partition_values)
        if self.partition_buckets is not None:
            return [str(b) for b in range(self.partition_buckets)]
        return [None]

    def key_pointers(self, version: int) -> list[str]:
        """The idempotency-key pointers of one version's schema (section 3)."""
        return list(self.schemas[version]["x-courier"]["idempotency_key"])


def load_channel(qualified: str, schemas_dir: Path = DEFAULT_SCHEMAS) -> Channel:
    """Reads `<domain>.<channel>` from `<schemas_dir>/<domain>/channels.json`."""
    domain, _, name = qualified.partition(".")
    contracts = json.loads((schemas_dir / domain / "channels.json").read_text())
    spec = contracts["channels"].get(name)
    if not name or spec is None:
        raise WireError(f"no channel {qualified!r} in {schemas_dir / domain / 'channels.json'}")
    schemas: dict[int, Json] = {}
    for path in (schemas_dir / domain).glob(f"{spec['message']}.v*.json"):
        version = re.fullmatch(rf"{re.escape(spec['message'])}\.v([0-9]+)\.json", path.name)
        if version:
            schemas[int(version[1])] = json.loads(path.read_text())
    if not schemas:
        raise WireError(f"no schema {spec['message']}.v<N>.json in {schemas_dir / domain}")
    envelope = json.loads((schemas_dir / "courier" / "envelope.v1.json").read_text())

    def ms(field: str, default: int, within: Json = spec) -> int:
        return duration_ms(within[field]) if field in within else default

    ttl = ms("ttl", 86_400_000)
    backoff = spec.get("backoff", {})
    retention = spec.get("retention", {})
    partitions = spec.get("partitions", {})
    return Channel(
        domain=domain,
        name=name,
        message=spec["message"],
        transport=spec["transport"],
        compatibility=spec["compatibility"],
        ttl_ms=ttl,
        visibility_timeout_ms=ms("visibility_timeout", 30_000),
        dedup_window_ms=ms("dedup_window", ttl),
        max_attempts=spec.get("max_attempts", 5),
        backoff_initial_ms=ms("initial", 1_000, backoff),
        backoff_max_ms=ms("max", 300_000, backoff),
        backoff_multiplier=float(backoff.get("multiplier", 2)),
        max_age_ms=ms("max_age", 2 * ttl, retention),
        max_len=retention.get("max_len", 0),
        max_depth=spec.get("max_depth", 0),
        sla_ms=ms("sla", 0),
        partition_field=partitions.get("field"),
        partition_values=tuple(partitions["values"]) if "values" in partitions else None,
        partition_buckets=partitions.get("buckets"),
        schemas=schemas,
        validators={v: _validator(s) for v, s in schemas.items()},
        envelope_validator=_validator(envelope),
    )


# --- Keys (section 1) --------------------------------------------------------


def check_namespace(namespace: str) -> str:
    """A namespace must be non-empty and free of braces, which would move the hash tag."""
    if not namespace or "{" in namespace or "}" in namespace:
        raise WireError(f"namespace {namespace!r} is empty or holds a brace")
    return namespace


@dataclass(frozen=True)
class Keys:
    """The keys of one channel, or of one partition of a partitioned channel (1.1)."""

    namespace: str
    channel: str
    partition: str | None = None

    @property
    def prefix(self) -> str:
        tag = self.channel if self.partition is None else f"{self.channel}#{self.partition}"
        return f"{self.namespace}:{{{tag}}}:"

    def part(self, name: str) -> str:
        return self.prefix + name

    def inbox(self, transport: Transport) -> str:
        """Where a publish puts messages: the stream, the queue, or the Pub/Sub channel."""
        return self.part({"stream": "stream", "list": "queue", "priority": "queue"}.get(transport, "broadcast"))

    def idem(self, key: str) -> str:
        return self.part(f"idem:{key}")

    def done(self, group: str, key: str) -> str:
        return self.part(f"done:{group}:{key}")


# --- The envelope (section 2) ------------------------------------------------


def timestamp(at: datetime) -> str:
    """courier's way of writing a time: UTC, milliseconds and a `Z`."""
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_envelope(
    channel: Channel,
    version: int,
    payload: Json,
    key: str,
    producer: str,
    *,
    priority: int | None = None,
    correlation_id: str | None = None,
) -> Json:
    """A first-attempt envelope, its fields in courier's order (2.1, 2.2)."""
    created = now()
    try:
        expires = created + timedelta(milliseconds=channel.ttl_ms)
    except OverflowError:
        expires = LATEST
    envelope: Json = {
        "schema": channel.schema_name,
        "version": version,
        "id": str(uuid.uuid4()),
        "key": key,
        "created_at": timestamp(created),
        "expires_at": timestamp(min(expires, LATEST)),
        "attempt": 1,
        "producer": producer,
    }
    if correlation_id is not None:
        envelope["correlation_id"] = correlation_id
    envelope["traceparent"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    if priority is not None:
        envelope["priority"] = priority
    envelope["payload"] = payload
    return envelope


def encode(value: object) -> str:
    """Compact JSON, non-ASCII written as itself, as courier writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_history(text: str | None) -> list[Json]:
    """An attempt history (2.3); an unreadable one counts as empty, as courier reads it."""
    try:
        history = json.loads(text) if text else []
    except ValueError:
        return []
    return history if isinstance(history, list) else []


def parse_record(text: str) -> tuple[str, list[Json], int]:
    """A list or priority record (2.4): the envelope text, its history and its reap count."""
    try:
        value = json.loads(text)
    except ValueError:
        return text, [], 0
    if isinstance(value, dict) and "schema" not in value and isinstance(value.get("m"), str):
        reaped = value.get("r", 0)
        return value["m"], parse_history(value.get("h")), reaped if isinstance(reaped, int) else 0
    return text, [], 0


# --- Idempotency key and routing (sections 3, 4) ----------------------------


def resolve(document: object, pointer: str) -> object:
    """The value an RFC 6901 JSON pointer names; KeyError if there is none."""
    if pointer == "":
        return document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and token in document:
            document = document[token]
        elif isinstance(document, list) and token.isdigit() and int(token) < len(document):
            document = document[int(token)]
        else:
            raise KeyError(pointer)
    return document


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**64


def idempotency_key(payload: Json, pointers: list[str]) -> str:
    """The key derived from the payload's key fields (section 3)."""
    parts = []
    for pointer in pointers:
        try:
            value = resolve(payload, pointer)
        except KeyError:
            raise WireError(f"idempotency key field {pointer}: missing") from None
        if _is_int(value):
            parts.append(str(value))
        elif not isinstance(value, str):
            raise WireError(f"idempotency key field {pointer}: not a string or integer")
        elif value == "":
            raise WireError(f"idempotency key field {pointer}: empty")
        else:
            parts.append(value.replace("%", "%25").replace(":", "%3A"))
    key = ":".join(parts)
    if not 1 <= len(key) <= 512:
        raise WireError(f"idempotency key is {len(key)} characters, not 1 to 512")
    return key


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a, the hash of bucketed partitions (section 4)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def route(channel: Channel, payload: Json) -> str | None:
    """The partition a payload goes to, or None on an unpartitioned channel (section 4)."""
    if channel.partition_field is None:
        return None
    field = channel.partition_field
    try:
        value = resolve(payload, field)
    except KeyError:
        raise WireError(f"partition field {field}: missing") from None
    if channel.partition_values is not None:
        if isinstance(value, str) and value in channel.partition_values:
            return value
        raise WireError(f"partition field {field}: {value!r} is not a partition of {channel.qualified}")
    if isinstance(value, str):
        data = value.encode()
    elif _is_int(value):
        data = str(value).encode()
    else:
        # Fractions would need serde_json's number text; the registry admits none.
        raise WireError(f"partition field {field}: not a string or integer")
    assert channel.partition_buckets is not None
    return str(fnv1a_64(data) % channel.partition_buckets)


# --- Scripts -----------------------------------------------------------------


class Scripts:
    """courier's scripts, each common.lua + newline + `<operation>.lua`, called by SHA.

    redis-py's `Script` sends EVALSHA and loads the script after a NOSCRIPT reply.
    """

    def __init__(self, client: redis.Redis, lua_dir: Path = DEFAULT_LUA) -> None:
        self._client = client
        self._dir = lua_dir
        self._common = (lua_dir / "common.lua").read_bytes()
        self._loaded: dict[str, Script] = {}

    def __getitem__(self, operation: str) -> Script:
        if operation not in self._loaded:
            body = (self._dir / f"{operation}.lua").read_bytes()
            self._loaded[operation] = self._client.register_script(self._common + b"\n" + body)
        return self._loaded[operation]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def default_producer() -> str:
    """courier's default client name: `<process id>-<8 hex digits>` (2.1)."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


# --- Publishing (6.1) --------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The outcome of one publish."""

    outcome: Literal["published", "duplicate"]
    # The message id: this message's, or for a duplicate the first message's.
    id: str
    key: str
    partition: str | None
    # Where it went: stream entry id, "queued", "delayed", or Pub/Sub receivers; "" for a duplicate.
    where: str


class Producer:
    """Publishes validated messages to one channel with courier's publish script."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        channel: Channel,
        name: str | None = None,
        scripts: Scripts | None = None,
    ) -> None:
        self.client = client
        self.namespace = check_namespace(namespace)
        self.channel = channel
        self.name = name or default_producer()
        self.scripts = scripts or Scripts(client)

    def publish(
        self,
        payload: Json,
        version: int | None = None,
        *,
        priority: int | None = None,
        correlation_id: str | None = None,
    ) -> Published:
        """Validates the payload, derives its key and partition, and publishes it."""
        channel = self.channel
        version = channel.newest if version is None else version
        if version not in channel.validators:
            raise WireError(f"{channel.schema_name} has no version {version}")
        errors = schema_errors(channel.validators[version], payload)
        if errors:
            raise WireError(f"payload is not a valid {channel.schema_name} v{version}: {errors}")
        key = idempotency_key(payload, channel.key_pointers(version))
        partition = route(channel, payload)
        envelope = new_envelope(
            channel, version, payload, key, self.name, priority=priority, correlation_id=correlation_id
        )
        errors = schema_errors(channel.envelope_validator, envelope)
        if errors:
            raise WireError(f"envelope is not valid: {errors}")
        # On priority channels the SLA deadline is `created_at` plus the channel's `sla`.
        deadline = 0
        if channel.sla_ms:
            deadline = int(parse_time(envelope["created_at"]).timestamp() * 1000) + channel.sla_ms
        return self.publish_text(encode(envelope), envelope["id"], key, partition, priority or 0, deadline)

    def publish_text(
        self,
        text: str | bytes,
        message_id: str,
        key: str,
        partition: str | None,
        priority: int = 0,
        sla_deadline_ms: int = 0,
    ) -> Published:
        """Runs publish.lua for one message whose text is given as is, unchecked.

        On priority channels `priority` orders the message (the envelope's
        `priority`, 0 when it has none) and `sla_deadline_ms` (ms since the
        epoch, 0: none) goes to the `sla` set.
        """
        channel = self.channel
        keys = Keys(self.namespace, channel.qualified, partition)
        args: list[str | bytes | int] = [
            channel.dedup_window_ms, channel.max_depth, channel.max_len, channel.max_age_ms,
            channel.transport, 0, text, message_id,
        ]
        if channel.transport == "priority":
            args += [priority, sla_deadline_ms]
        status, value = self.scripts["publish"](
            keys=[keys.inbox(channel.transport), keys.part("delayed"), keys.part("sla"), keys.idem(key)],
            args=args,
        )
        status, value = _text(status), _text(value)
        if status == "full":
            raise ChannelFull(f"{keys.inbox(channel.transport)} is full at depth {value}")
        if status == "dup":
            return Published("duplicate", value, key, partition, "")
        return Published("published", message_id, key, partition, value)


# --- Consuming (6.2, 6.3, 6.5, section 7) ------------------------------------


@dataclass
class Delivery:
    """One message as taken, before any check."""

    partition: str | None
    # Stream entry id, or the processing-list element exactly as held (6.3).
    handle: bytes
    # Delivery count (6.2): what the poison check compares with max_attempts.
    deliveries: int
    # The envelope text; None when there is none (a stream entry without `m`)
    # or the bytes are not UTF-8.
    text: str | None
    history: list[Json]
    # Why `text` is None, for the dead letter's error.
    missing: str | None = None


@dataclass
class Verdict:
    """What the checks of section 7 decided."""

    action: Literal["handle", "skip", "dead"]
    envelope: Json | None = None
    # The version the payload is read as (check 6).
    read_as: int | None = None
    reason: str | None = None
    error: str | None = None


class Consumer:
    """Takes, checks and settles the messages of one channel as one named consumer of a group.

    On list and priority channels the group names the done marks
    (`done:<group>:<key>`) and the dead letters; there is no Redis group.
    The client must not decode responses: a message's bytes are needed as
    they are, to tell text that is not UTF-8 and to settle a held element.
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        channel: Channel,
        group: str,
        name: str,
        scripts: Scripts | None = None,
    ) -> None:
        if channel.transport == "pubsub":
            raise WireError(f"{channel.qualified} is a Pub/Sub channel; this consumer takes from queues")
        self.client = client
        self.namespace = check_namespace(namespace)
        self.channel = channel
        self.group = group
        self.name = name
        self.scripts = scripts or Scripts(client)
        self.keys = [Keys(self.namespace, channel.qualified, p) for p in channel.partitions()]
        self._beaten_at = 0.0
        # Messages taken but not yet handed out, such as this consumer's own leftovers.
        self._backlog: list[Delivery] = []

    @property
    def streams(self) -> bool:
        return self.channel.transport == "stream"

    def start(self) -> None:
        """Joins (streams), beats, and takes back what this consumer held before a restart."""
        self._beat(force=True)
        for keys in self.keys:
            if self.streams:
                self._join(keys)
                self._take_back_own_pending(keys)
            else:
                held = cast(list[bytes], self.client.lrange(keys.part(f"processing:{self.name}"), 0, -1))
                self._backlog += [self._held(keys, element) for element in reversed(held)]

    def take(self, count: int, wait_ms: int) -> list[Delivery]:
        """Up to `count` deliveries, polling for at most `wait_ms` when none is waiting."""
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            self._beat()
            taken, self._backlog = self._backlog[:count], self._backlog[count:]
            for keys in self.keys:
                if len(taken) >= count:
                    break
                self._move_due(keys)
                taken += self._take_from(keys, count - len(taken))
            if taken or time.monotonic() >= deadline:
                return taken
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def check(self, delivery: Delivery) -> Verdict:
        """The checks of section 7, in order; the first that fails decides."""
        channel = self.channel
        if delivery.deliveries > channel.max_attempts:
            return Verdict("dead", reason="poison", error=(
                f"delivered {delivery.deliveries} times without being settled "
                f"(max attempts {channel.max_attempts})"))
        if delivery.text is None:
            return Verdict("dead", reason="invalid_payload", error=delivery.missing or "no envelope")
        try:
            envelope = json.loads(delivery.text)
        except ValueError as e:
            return Verdict("dead", reason="invalid_payload", error=f"envelope is not JSON: {e}")
        errors = schema_errors(channel.envelope_validator, envelope)
        if errors:
            return Verdict("dead", envelope, reason="invalid_payload", error=f"invalid envelope: {errors}")
        if parse_time(envelope["expires_at"]) <= now():
            return Verdict("dead", envelope, reason="expired", error=f"expired at {envelope['expires_at']}")
        if envelope["schema"] != channel.schema_name:
            return Verdict("dead", envelope, reason="schema_mismatch", error=(
                f"{envelope['schema']} on {channel.qualified}, which carries {channel.schema_name}"))
        version = envelope["version"]
        if version in channel.schemas:
            read_as = version
        elif version > channel.newest and channel.compatibility in READS_NEWER:
            read_as = channel.newest
        else:
            return Verdict("dead", envelope, reason="version_unsupported", error=(
                f"{channel.schema_name} version {version} is not readable here "
                f"(versions {sorted(channel.schemas)}, compatibility {channel.compatibility})"))
        errors = schema_errors(channel.validators[read_as], envelope["payload"])
        if errors:
            return Verdict("dead", envelope, read_as, "invalid_payload",
                           f"payload is not a valid {channel.schema_name} v{read_as}: {errors}")
        keys = self.keys_of(delivery)
        if self.client.exists(keys.done(self.group, envelope["key"])):
            return Verdict("skip", envelope, read_as)
        return Verdict("handle", envelope, read_as)

    def keys_of(self, delivery: Delivery) -> Keys:
        return Keys(self.namespace, self.channel.qualified, delivery.partition)

    # Settlements (6.3): each returns "ok", or "stale" when the delivery is no longer ours.

    def done(self, delivery: Delivery, envelope: Json) -> str:
        """Handled: acknowledge and mark the key done until the message expires, plus vt."""
        left = int((parse_time(envelope["expires_at"]) - now()).total_seconds() * 1000)
        ttl = (left if left >= 0 else self.channel.ttl_ms) + self.channel.visibility_timeout_ms
        return self._settle(delivery, envelope["key"], ["done", max(ttl, 1)])

    def skip(self, delivery: Delivery, envelope: Json) -> str:
        """Already done by this group: acknowledge, nothing more."""
        return self._settle(delivery, envelope["key"], ["skip"])

    def retry(self, delivery: Delivery, envelope: Json, error: str, delay_ms: int | None = None) -> str:
        """A retryable failure: the next attempt on the delayed set, or `max_attempts` when spent."""
        attempt = envelope["attempt"]
        record = {"attempt": attempt, "at": timestamp(now()), "consumer": self.name, "error": error}
        if attempt >= self.channel.max_attempts:
            return self.dead(delivery, "max_attempts", error, delivery.history + [record])
        if delay_ms is None:
            c = self.channel
            bound = min(c.backoff_max_ms, c.backoff_initial_ms * c.backoff_multiplier ** (attempt - 1))
            delay_ms = int(random.uniform(0, bound))
        record["retry_in_ms"] = delay_ms
        member = encode({"m": encode(dict(envelope, attempt=attempt + 1)),
                         "h": encode(delivery.history + [record])})
        return self._settle(delivery, envelope["key"], ["retry", delay_ms, member])

    def dead(self, delivery: Delivery, reason: str, error: str, history: list[Json] | None = None) -> str:
        """Dead-letters the delivery (2.5, 6.4), acknowledging it in the same step."""
        letter: Json = {
            "reason": reason, "error": error, "dead_at": timestamp(now()),
            "channel": self.channel.qualified,
        }
        if delivery.partition is not None:
            letter["partition"] = delivery.partition
        letter |= {
            "group": self.group, "consumer": self.name,
            "stream_id": delivery.handle.decode() if self.streams else "processing list",
        }
        key = "-"
        if delivery.text is not None:
            try:
                letter["envelope"] = json.loads(delivery.text)
                if isinstance(letter["envelope"], dict) and isinstance(letter["envelope"].get("key"), str):
                    key = letter["envelope"]["key"]
            except ValueError:
                letter["raw"] = delivery.text
        letter["history"] = delivery.history if history is None else history
        return self._settle(delivery, key, ["dead", encode(letter)])

    def _settle(self, delivery: Delivery, key: str, action: list[str | int]) -> str:
        keys = self.keys_of(delivery)
        done_key = keys.done(self.group, key)
        if self.streams:
            entry = delivery.handle
            reply = self.scripts["settle"](
                keys=[keys.part("stream"), keys.part("delayed"), keys.part("dlq"), done_key],
                args=[self.group, self.name, entry, entry, self.channel.max_age_ms, DLQ_TTL_MS,
                      DLQ_MAX_LEN, entry, delivery.deliveries, *action],
            )
        else:
            reply = self.scripts["settle_held"](
                keys=[keys.part(f"processing:{self.name}"), keys.part("delayed"), keys.part("dlq"), done_key],
                args=[self.channel.max_age_ms, DLQ_TTL_MS, DLQ_MAX_LEN, delivery.handle, *action],
            )
        return _text(reply[0])

    # Taking (6.2).

    def _beat(self, force: bool = False) -> None:
        """The heartbeat, every vt / 3: `alive`, and on lists the reaper's bookkeeping."""
        vt = self.channel.visibility_timeout_ms
        if not force and time.monotonic() - self._beaten_at < vt / 3000:
            return
        pipe = self.client.pipeline(transaction=False)
        for keys in self.keys:
            pipe.set(keys.part(f"alive:{self.name}"), 1, px=vt)
            if not self.streams:
                pipe.sadd(keys.part("consumers"), self.name)
                pipe.pexpire(keys.part("consumers"), self.channel.max_age_ms)
                pipe.pexpire(keys.part(f"processing:{self.name}"), self.channel.max_age_ms)
        pipe.execute()
        self._beaten_at = time.monotonic()

    def _join(self, keys: Keys) -> None:
        try:
            self.client.xgroup_create(keys.part("stream"), self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self.client.execute_command("PEXPIRE", keys.part("stream"), self.channel.max_age_ms, "NX")

    def _take_back_own_pending(self, keys: Keys) -> None:
        stream = keys.part("stream")
        pending = cast(list[Json], self.client.xpending_range(
            stream, self.group, "-", "+", 1000, consumername=self.name))
        self._backlog += self._claim(keys, pending, 0)

    def _claim(self, keys: Keys, pending: list[Json], min_idle_ms: int) -> list[Delivery]:
        if not pending:
            return []
        counts = {p["message_id"]: p["times_delivered"] for p in pending}
        claimed = cast(Entries, self.client.xclaim(
            keys.part("stream"), self.group, self.name, min_idle_ms, list(counts)))
        # XCLAIM raises each count by one; an entry trimmed away meanwhile comes back without fields.
        return [self._entry(keys, entry_id, fields, counts[entry_id] + 1)
                for entry_id, fields in claimed if fields is not None]

    def _take_from(self, keys: Keys, count: int) -> list[Delivery]:
        if not self.streams:
            held: list[bytes] = self.scripts["take"](
                keys=[keys.part("queue"), keys.part(f"processing:{self.name}"), keys.part("sla")],
                args=[count, self.channel.transport, self.channel.max_age_ms],
            )
            return [self._held(keys, element) for element in held]
        stream = keys.part("stream")
        vt = self.channel.visibility_timeout_ms
        pending = cast(list[Json], self.client.xpending_range(stream, self.group, "-", "+", count, idle=vt))
        others = [p for p in pending if _text(p["consumer"]) != self.name]
        taken = self._claim(keys, others, vt)
        if len(taken) >= count:
            return taken
        try:
            reply = cast(list[tuple[bytes, Entries]] | None, self.client.xreadgroup(
                self.group, self.name, {stream: ">"}, count=count - len(taken)))
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self._join(keys)  # The stream expired with its group: join again.
            return taken
        for _stream, entries in reply or []:
            taken += [self._entry(keys, entry_id, fields or {}, 1) for entry_id, fields in entries]
        return taken

    def _move_due(self, keys: Keys) -> None:
        """Due retries and scheduled messages back to the queue (6.5); unreadable members dead-lettered."""
        letter = encode({
            "reason": "invalid_payload", "error": "delayed member is not a courier record",
            "dead_at": timestamp(now()), "channel": self.channel.qualified,
            **({"partition": keys.partition} if keys.partition is not None else {}),
            "group": self.group, "consumer": self.name, "stream_id": "delayed", "history": [],
            "escaped": True,
        })
        inbox = keys.inbox(self.channel.transport)
        while self.scripts["move_due"](
            keys=[keys.part("delayed"), inbox, keys.part("dlq")],
            args=[MOVE_DUE_CHUNK, self.channel.max_len, self.channel.max_age_ms, self.channel.transport,
                  letter[:-1] + ',"raw":', DLQ_MAX_LEN, DLQ_TTL_MS, "}"],
        ) == MOVE_DUE_CHUNK:
            pass

    def _entry(self, keys: Keys, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> Delivery:
        history = fields.get(FIELD_HISTORY)
        delivery = Delivery(keys.partition, entry_id, deliveries, None,
                            parse_history(history.decode(errors="replace") if history else None))
        raw = fields.get(FIELD_ENVELOPE)
        if raw is None:
            names = ", ".join(_text(name) for name in fields)
            delivery.missing = f"stream entry has no field m (fields: {names})"
        else:
            try:
                delivery.text = raw.decode()
            except UnicodeDecodeError:
                delivery.missing = "stream entry field m is not UTF-8"
        return delivery

    def _held(self, keys: Keys, element: bytes) -> Delivery:
        record = element
        if self.channel.transport == "priority":
            record = element.split(b"|", 1)[1]
        try:
            text = record.decode()
        except UnicodeDecodeError:
            return Delivery(keys.partition, element, 1, None, [], "record is not UTF-8")
        envelope, history, reaped = parse_record(text)
        return Delivery(keys.partition, element, 1 + reaped, envelope, history)
