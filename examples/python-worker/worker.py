#!/usr/bin/env python3
"""An offloader worker in Python, written from docs/protocol.md and schemas/ alone.

It serves one job kind, "upper": every input blob is fetched (verified), upper-cased (ASCII
letters only) and stored back as an output at `<input path>.upper`; the completion carries the
property `uppered` = the number of inputs.

    OFFLOADER_NAMESPACE=offloader python worker.py --topic acme/upper [--topic ...] [--name NAME]

Section numbers (§) below refer to docs/protocol.md.

How it is built, and why:

* One thread owns the AMQP connection (pika's BlockingConnection is not thread-safe). It
  dispatches deliveries, publishes completions, acks, and sends heartbeats.
* Jobs run on a small thread pool, so a slow S3 transfer never stops the connection thread
  from answering AMQP heartbeats or announcing us (a silent instance leaves every view after
  20 s, §3.5). A finished job hands its completion back to the connection thread with
  `add_callback_threadsafe`; only that thread publishes and acks.
* Every topic queue is consumed on a channel of its own: a failed `basic.consume` (404, the
  queue is gone) closes only that channel (§2), and acks must go on the delivery's channel.
* Completions, started events, dead letters and announcements go out on one publishing channel
  in confirm mode; pika then raises UnroutableError for a mandatory message no queue took and
  NackError for a message the broker refused (§3, §5.2 step 7).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Optional

import boto3
import botocore.config
import botocore.exceptions
import pika
import pika.exceptions

log = logging.getLogger("upper-worker")

# What we put in our announcement's instance.version. The schema says "the offloader version
# the instance runs"; this process runs none, so it says what it is instead (semver build
# metadata keeps it parseable).
VERSION = "0.1.0+python-example"

JOB_SCHEMA = "offloader.job.v1"
COMPLETION_SCHEMA = "offloader.completion.v1"
STARTED_SCHEMA = "offloader.job-started.v1"
ANNOUNCEMENT_SCHEMA = "offloader.announcement.v1"
CONTROL_SCHEMA = "offloader.control.v1"
DEAD_LETTER_TYPE = "offloader.dead-letter"

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # §4: larger objects go up as a multipart upload
DEDUP_CAPACITY = 100_000  # how many confirmed (id, attempt) pairs we remember (§5.2 step 2)

# ---------------------------------------------------------------------------------------------
# Small helpers: time, topics and patterns, trace context
# ---------------------------------------------------------------------------------------------


def now_rfc3339() -> str:
    """UTC with a 'Z' suffix, as offloader writes timestamps (defs.json#/$defs/timestamp)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


TOPIC_RE = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
PATTERN_RE = re.compile(r"^(\*\*?|[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*(/\*\*?)?)$")


def is_topic(s: Any) -> bool:
    return isinstance(s, str) and len(s.encode()) <= 200 and bool(TOPIC_RE.match(s))


def is_pattern(s: Any) -> bool:
    return isinstance(s, str) and len(s.encode()) <= 200 and bool(PATTERN_RE.match(s))


def routing_key(topic: str) -> str:
    """§1: a topic becomes a routing key by turning '/' into '.'."""
    return topic.replace("/", ".")


def split_pattern(pattern: str) -> tuple[list[str], str]:
    """A pattern as (prefix segments, tail) with tail 'exact', 'one' (`*`) or 'many' (`**`)."""
    segments = pattern.split("/")
    if segments[-1] == "**":
        return segments[:-1], "many"
    if segments[-1] == "*":
        return segments[:-1], "one"
    return segments, "exact"


def pattern_matches(pattern: str, topic: str) -> bool:
    """§1: `*` is exactly one more segment, `**` one or more (a bare `**` matches every topic)."""
    prefix, tail = split_pattern(pattern)
    segments = topic.split("/")
    if segments[: len(prefix)] != prefix:
        return False
    extra = len(segments) - len(prefix)
    return {"exact": extra == 0, "one": extra == 1, "many": extra >= 1}[tail]


def pattern_covers(wide: str, narrow: str) -> bool:
    """True when every topic `narrow` matches is matched by `wide` too (§3.6 `enable`)."""
    wp, wt = split_pattern(wide)
    np_, nt = split_pattern(narrow)
    if np_[: len(wp)] != wp:
        return False
    extra = len(np_) - len(wp)  # segments `narrow` fixes beyond `wide`'s prefix
    if wt == "exact":
        return nt == "exact" and extra == 0
    if wt == "one":
        return (nt == "exact" and extra == 1) or (nt == "one" and extra == 0)
    # wt == "many": anything strictly below the prefix
    return extra >= 1 or (nt != "exact" and extra >= 0)


TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(incoming: Optional[str]) -> tuple[str, str]:
    """§7: continue the job's trace with a span id of our own. Returns (traceparent, trace id).

    A job without a usable `traceparent` (the leader always sends one; a hand-published job may
    not) gets a fresh trace, so our replies still carry the header §3 asks for.
    """
    m = TRACEPARENT_RE.match(incoming or "")
    if m and m.group(1) != "0" * 32:
        trace_id, flags = m.group(1), m.group(3)
    else:
        trace_id, flags = os.urandom(16).hex(), "01"
    return f"00-{trace_id}-{os.urandom(8).hex()}-{flags}", trace_id


# ---------------------------------------------------------------------------------------------
# Validating an offloader.job.v1 (schemas/offloader.job.v1.json, by hand: stdlib only)
# ---------------------------------------------------------------------------------------------

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MIME_RE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")
RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
SCHEMA_ID_RE = re.compile(r"^offloader\.([a-z-]+)\.v(\d+)$")


def is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def job_problem(job: Any) -> Optional[str]:
    """Why `job` is not a valid offloader.job.v1, or None.

    Unknown fields are ignored, not refused: §9 says v1 readers ignore fields they do not know
    (the schema's `additionalProperties: false` describes what writers emit today).
    """
    if not isinstance(job, dict):
        return "the body is not a JSON object"
    schema = job.get("schema")
    if schema != JOB_SCHEMA:
        m = SCHEMA_ID_RE.match(schema) if isinstance(schema, str) else None
        if m and m.group(1) == "job":  # §9: reject another major with a clear reason
            return f"unsupported schema version {schema!r}: this worker reads {JOB_SCHEMA}"
        return f"schema is {schema!r}, expected {JOB_SCHEMA!r}"
    if not (isinstance(job.get("id"), str) and UUID_RE.match(job["id"])):
        return "id is not a lowercase hyphenated UUID"
    if not is_topic(job.get("topic")):
        return "topic is missing or not a valid topic"
    if not isinstance(job.get("properties", {}), dict):
        return "properties is not an object"
    inputs = job.get("inputs", [])
    if not isinstance(inputs, list):
        return "inputs is not an array"
    for i, entry in enumerate(inputs):
        if not isinstance(entry, dict):
            return f"inputs[{i}] is not an object"
        if not (isinstance(entry.get("path"), str) and entry["path"]):
            return f"inputs[{i}].path is missing or empty"
        blob = entry.get("blob")
        if not isinstance(blob, dict):
            return f"inputs[{i}].blob is missing"
        if not (isinstance(blob.get("sha256"), str) and SHA256_RE.match(blob["sha256"])):
            return f"inputs[{i}].blob.sha256 is not 64 lowercase hex digits"
        if not is_int(blob.get("size"), 0, 2**64 - 1):
            return f"inputs[{i}].blob.size is not a byte count"
        if "mime_type" in entry and not (
            isinstance(entry["mime_type"], str) and MIME_RE.match(entry["mime_type"])
        ):
            return f"inputs[{i}].mime_type is not a media type"
    for field in ("attempt", "max_attempts"):
        if not is_int(job.get(field), 1, 2**32 - 1):
            return f"{field} is not an integer from 1 to 4294967295"
    reply_to = job.get("reply_to")
    if not (isinstance(reply_to, str) and 1 <= len(reply_to.encode()) <= 255):
        return "reply_to is missing or not an AMQP short string"
    if not (isinstance(job.get("created_at"), str) and RFC3339_RE.match(job["created_at"])):
        return "created_at is not an RFC 3339 timestamp"
    return None


# ---------------------------------------------------------------------------------------------
# Enablement (§3.6; defs.json#/$defs/enablement)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Enablement:
    allow: list[str]
    deny: list[str]
    exclusive: Optional[str] = None

    def allows(self, topic: str) -> bool:
        # An exclusive pattern overrides both lists (defs.json: "allow list minus deny list,
        # unless an exclusive pattern overrides both").
        if self.exclusive is not None:
            return pattern_matches(self.exclusive, topic)
        return any(pattern_matches(p, topic) for p in self.allow) and not any(
            pattern_matches(p, topic) for p in self.deny
        )

    def apply(self, action: str, pattern: str) -> None:
        """The exact edits §3.6 lists. The leader computes the same edit on what we last
        announced and waits for an announcement showing exactly that result, so the lists keep
        their order and new entries go at the end."""
        if action == "enable":
            self.deny = [p for p in self.deny if p != pattern]
            if not any(pattern_covers(p, pattern) for p in self.allow):
                self.allow.append(pattern)
            self.exclusive = None
        elif action == "disable":
            self.allow = [p for p in self.allow if p != pattern]
            if pattern not in self.deny:
                self.deny.append(pattern)
            if self.exclusive == pattern:
                self.exclusive = None
        elif action == "exclusive":
            self.exclusive = pattern

    def to_json(self) -> dict:
        return {"allow": list(self.allow), "deny": list(self.deny), "exclusive": self.exclusive}


# ---------------------------------------------------------------------------------------------
# The datastore: content-addressed blobs in S3 (§4)
# ---------------------------------------------------------------------------------------------


class InputRefused(Exception):
    """An input we must not use: too large, missing, or corrupt. Retrying cannot help: CANCEL."""


class DatastoreUnavailable(Exception):
    """S3 could not be reached or answered with an error: FAILED with retry."""


class Datastore:
    def __init__(self, cfg: "Config"):
        self.bucket = cfg.s3_bucket
        self.namespace = cfg.namespace
        self.max_input_bytes = cfg.max_input_bytes
        self.s3 = boto3.client(
            "s3",
            endpoint_url=cfg.s3_endpoint or None,  # empty: AWS itself
            region_name=cfg.s3_region,
            aws_access_key_id=cfg.s3_access_key,
            aws_secret_access_key=cfg.s3_secret_key,
            config=botocore.config.Config(
                s3={"addressing_style": "path" if cfg.s3_path_style else "auto"},
                # Few, quick retries: an S3 that is away should end the attempt as FAILED
                # (the leader retries it later), not hang the job.
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                # Only checksum when S3 requires it: S3-compatible servers (SeaweedFS, MinIO)
                # do not all speak the newer flexible checksums.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def key(self, sha256: str) -> str:
        """`<ns>/blobs/<first two hex digits>/<sha256>`, `blobs/...` with an empty namespace."""
        rel = f"blobs/{sha256[:2]}/{sha256}"
        return f"{self.namespace}/{rel}" if self.namespace else rel

    def fetch(self, path: str, blob: dict) -> bytes:
        sha, size = blob["sha256"], blob["size"]
        # Refuse before fetching: the reference tells us the size, no need to download it.
        if size > self.max_input_bytes:
            raise InputRefused(
                f"input {path} is {size} bytes, over this worker's limit of "
                f"{self.max_input_bytes} bytes"
            )
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=self.key(sha))
            # Read at most one byte more than announced: enough to see it is too long
            # without letting a wrong object fill our memory.
            data = obj["Body"].read(size + 1)
            obj["Body"].close()
        except botocore.exceptions.ClientError as e:
            if _status(e) == 404:
                raise InputRefused(f"input {path}: blob {sha} is not in the datastore") from e
            raise DatastoreUnavailable(f"reading blob {sha}: {e}") from e
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise DatastoreUnavailable(f"reading blob {sha}: {e}") from e
        if len(data) != size:
            raise InputRefused(
                f"input {path}: blob {sha} is corrupt: expected {size} bytes, "
                f"got {len(data) if len(data) <= size else 'more'}"
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise InputRefused(
                f"input {path}: blob {sha} is corrupt: its content hashes to {actual}")
        return data

    def store(self, data: bytes) -> dict:
        """Store `data` under its own name, only if absent. Returns its blob reference."""
        sha = hashlib.sha256(data).hexdigest()
        ref = {"sha256": sha, "size": len(data)}
        key = self.key(sha)
        try:
            try:
                self.s3.head_object(Bucket=self.bucket, Key=key)
                return ref  # already there: same name, same bytes
            except botocore.exceptions.ClientError as e:
                if _status(e) != 404:
                    raise
            if len(data) > MULTIPART_THRESHOLD:
                self._put_multipart(key, data)
            else:
                # If-None-Match: * makes the write conditional: two workers storing the same
                # output at once cannot overwrite each other; the loser gets 412.
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                    ContentType="application/octet-stream",
                )
        except botocore.exceptions.ClientError as e:
            if _status(e) == 412:
                return ref  # someone stored it meanwhile: success (§4)
            raise DatastoreUnavailable(f"storing blob {sha}: {e}") from e
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise DatastoreUnavailable(f"storing blob {sha}: {e}") from e
        return ref

    def _put_multipart(self, key: str, data: bytes) -> None:
        upload = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            for n, start in enumerate(range(0, len(data), MULTIPART_THRESHOLD), start=1):
                part = self.s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n,
                    Body=data[start : start + MULTIPART_THRESHOLD],
                )
                parts.append({"PartNumber": n, "ETag": part["ETag"]})
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
                MultipartUpload={"Parts": parts},
            )
        except Exception:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:  # best effort; the original error is the one to report
                pass
            raise


def _status(e: botocore.exceptions.ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


# ---------------------------------------------------------------------------------------------
# The consumer: what "upper" does with a job. It never sees RabbitMQ.
# ---------------------------------------------------------------------------------------------


def run_upper(job: dict, store: Datastore) -> tuple[dict, list, dict]:
    """Returns (result, outputs, properties) for the completion (§3.3)."""
    outputs = []
    try:
        for entry in job.get("inputs", []):
            data = store.fetch(entry["path"], entry["blob"])
            # bytes.upper() changes a-z only: exactly "ASCII upper-case", other bytes intact.
            ref = store.store(data.upper())
            out = {"path": entry["path"] + ".upper", "blob": ref}
            if "mime_type" in entry:
                out["mime_type"] = entry["mime_type"]
            outputs.append(out)
    except InputRefused as e:
        return {"status": "CANCEL", "reason": str(e)}, [], {}
    except DatastoreUnavailable as e:
        return {"status": "FAILED", "reason": f"datastore unavailable: {e}", "retry": True}, [], {}
    return {"status": "OK"}, outputs, {"uppered": len(job.get("inputs", []))}


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Config:
    amqp_url: str
    namespace: str
    cluster: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_path_style: bool
    s3_access_key: str
    s3_secret_key: str
    patterns: list[str]
    name: str
    concurrency: int
    prefetch: int
    max_input_bytes: int
    heartbeat_interval: float
    heartbeat_timeout: float
    started_delay: float
    allow: list[str]
    deny: list[str]
    data_dir: Optional[str]

    @classmethod
    def load(cls, argv: Optional[list[str]] = None) -> "Config":
        env = os.environ.get
        p = argparse.ArgumentParser(description="An offloader worker serving the 'upper' job kind.",
                                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--topic", action="append", required=True, dest="patterns",
                       help="topic or pattern (a/b, a/*, a/**) to serve with 'upper'; repeatable")
        p.add_argument("--name", default=env("OFFLOADER_NAME") or socket.gethostname(),
                       help="readable instance name (default: host name)")
        p.add_argument("--concurrency", type=int, default=4, help="jobs run at once")
        p.add_argument("--prefetch", type=int, default=32,
                       help="unacked jobs RabbitMQ may hand us ahead, per topic queue")
        p.add_argument("--max-input-bytes", type=int, default=512 * 1024 * 1024,
                       help="largest input blob this worker loads into memory")
        p.add_argument("--heartbeat-interval", type=float, default=15.0, help="seconds")
        p.add_argument("--heartbeat-timeout", type=float, default=20.0,
                       help="seconds of silence after which a peer leaves our view")
        p.add_argument("--started-delay", type=float, default=0.1,
                       help="send a started event for jobs still running after this many "
                            "seconds (negative: never)")
        p.add_argument("--allow", action="append",
                       help="enabled patterns at first start (default **)")
        p.add_argument("--deny", action="append", help="disabled patterns at first start")
        p.add_argument("--data-dir", default=env("OFFLOADER_DATA_DIR"),
                       help="where the instance id and live enablement changes are kept "
                            "across restarts (default: not kept)")
        a = p.parse_args(argv)
        for pattern in a.patterns + (a.allow or []) + (a.deny or []):
            if not is_pattern(pattern):
                p.error(f"{pattern!r} is not a topic pattern (segments of [A-Za-z0-9_], "
                        f"optionally ending in /* or /**)")
        bucket = env("OFFLOADER_S3_BUCKET") or "offloader"
        datastore = env("OFFLOADER_DATASTORE") or ""
        if datastore.startswith("s3://"):
            bucket = datastore[len("s3://"):].split("/")[0] or bucket
        elif datastore:
            p.error(f"OFFLOADER_DATASTORE={datastore}: this example speaks S3 only")
        # Defaults as the README's configuration table. The namespace may be empty (§4 shows
        # the key layout without one), so only an unset variable takes the default.
        return cls(
            amqp_url=env("OFFLOADER_AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2f",
            namespace=env("OFFLOADER_NAMESPACE", "offloader"),
            cluster=env("OFFLOADER_CLUSTER") or "default",
            s3_endpoint=env("OFFLOADER_S3_ENDPOINT", "http://127.0.0.1:8333"),
            s3_bucket=bucket,
            s3_region=env("OFFLOADER_S3_REGION") or "us-east-1",
            s3_path_style=(env("OFFLOADER_S3_PATH_STYLE") or "true").lower()
            not in ("false", "0", "no"),
            # The README's defaults are the local SeaweedFS's keys.
            s3_access_key=env("AWS_ACCESS_KEY_ID", "offloader"),
            s3_secret_key=env("AWS_SECRET_ACCESS_KEY", "offloader-secret"),
            patterns=a.patterns,
            name=a.name,
            concurrency=max(1, a.concurrency),
            prefetch=max(1, a.prefetch),
            max_input_bytes=a.max_input_bytes,
            heartbeat_interval=a.heartbeat_interval,
            heartbeat_timeout=a.heartbeat_timeout,
            started_delay=a.started_delay,
            allow=a.allow or ["**"],
            deny=a.deny or [],
            data_dir=a.data_dir,
        )

    def name_of(self, suffix: str) -> str:
        """§1: every AMQP name starts with the namespace."""
        return f"{self.namespace}.{suffix}" if self.namespace else suffix


# ---------------------------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Held:
    """A delivery we hold unacked, from the moment it arrives until it is settled."""

    session: int
    conn: pika.BlockingConnection
    channel: Any  # the BlockingChannel it came on: its ack must go there
    method: Any  # pika.spec.Basic.Deliver
    props: pika.BasicProperties
    body: bytes
    topic: str
    job: dict
    traceparent: str
    trace_id: str
    redeliveries: int
    future: Optional[concurrent.futures.Future] = None


@dataclasses.dataclass
class TopicConsumer:
    channel: Any
    tag: Optional[str]  # None while not consuming


@dataclasses.dataclass
class Peer:
    role: str
    pid: int
    sequence: int
    last_seen: float
    topics: set
    interval: Optional[float]  # its interval_ms, in seconds


class Worker:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.store = Datastore(cfg)
        self.host = socket.gethostname()
        self.instance_id, self.enablement = self._load_state()
        self.sequence = 0
        self.last_announced = 0.0
        # (job id, attempt) of completions the broker confirmed: a redelivery of one of these
        # is acked without running the job again (§5.2 step 2). Keyed on attempt too, because
        # message_id is the same on every attempt.
        self.confirmed: "OrderedDict[tuple[str, int], None]" = OrderedDict()
        self.seen_commands: "OrderedDict[str, None]" = OrderedDict()
        self.peers: dict[str, Peer] = {}
        # Topic queues leaders have announced (§3.5). Topic queues are durable and nothing in
        # the protocol deletes them, so a queue stays known after its leader goes quiet: jobs
        # already queued keep being served while a leader restarts, and completions wait in
        # the durable reply queue.
        self.known_topics: set[str] = set()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=cfg.concurrency, thread_name_prefix="job"
        )
        self.stop_requested = False
        self.draining = False
        self.session = 0
        self.conn: Optional[pika.BlockingConnection] = None
        self.pub: Any = None
        self.consumers: dict[str, TopicConsumer] = {}
        self.held: dict[tuple[int, int, int], Held] = {}

    # --- state kept across restarts (the schema calls the instance id stable) ---------------

    def _state_file(self) -> Optional[str]:
        return os.path.join(self.cfg.data_dir, "python-worker.json") if self.cfg.data_dir else None

    def _load_state(self) -> tuple[str, Enablement]:
        path = self._state_file()
        if path and os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            e = saved["enablement"]
            return saved["instance_id"], Enablement(e["allow"], e["deny"], e.get("exclusive"))
        state = str(uuid.uuid4()), Enablement(list(self.cfg.allow), list(self.cfg.deny))
        self._save_state(*state)
        return state

    def _save_state(self, instance_id: str, enablement: Enablement) -> None:
        path = self._state_file()
        if not path:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"instance_id": instance_id, "enablement": enablement.to_json()}, f)
        os.replace(path + ".tmp", path)

    # --- the outer loop: connect, run, reconnect -----------------------------------------------

    def request_stop(self, signum: int, _frame: Any) -> None:
        if self.stop_requested:
            log.warning("second %s: exiting now; held jobs go back to their queues",
                        signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: draining (no new jobs; finishing the ones in hand)",
                 signal.Signals(signum).name)
        self.stop_requested = True

    def run(self) -> int:
        log.info("worker %s (%s) serving %s with 'upper'; namespace %r, cluster %r",
                 self.cfg.name, self.instance_id, ", ".join(self.cfg.patterns),
                 self.cfg.namespace, self.cfg.cluster)
        backoff = 1.0
        while True:
            began = time.monotonic()
            try:
                self._session()
                return 0
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                    pika.exceptions.ConnectionWrongStateError) as e:
                self._abandon_session()
                if self.stop_requested:
                    log.warning("broker lost while draining (%s); held jobs go back to their "
                                "queues", e)
                    return 0
                if time.monotonic() - began > 60:
                    backoff = 1.0  # it had been working: this is a new outage
                log.warning("broker connection lost (%r); reconnecting in %.0f s", e, backoff)
                deadline = time.monotonic() + backoff
                while time.monotonic() < deadline and not self.stop_requested:
                    time.sleep(0.2)
                if self.stop_requested:
                    return 0
                backoff = min(backoff * 2, 30.0)

    def _abandon_session(self) -> None:
        """The connection is gone, and with it every unacked delivery (RabbitMQ requeues them).
        Jobs not started yet are dropped; running ones finish, but their completions cannot be
        published on a dead connection and are dropped too: the redelivery runs them again."""
        for h in self.held.values():
            if h.future:
                h.future.cancel()
        self.held.clear()
        self.consumers.clear()
        try:
            if self.conn and self.conn.is_open:
                self.conn.close()
        except Exception:
            pass
        self.conn = None

    def _session(self) -> None:
        self.session += 1
        params = pika.URLParameters(self.cfg.amqp_url)
        params.client_properties = {
            "connection_name": f"offloader python worker {self.cfg.name} {self.instance_id}"
        }
        self.conn = pika.BlockingConnection(params)
        self.pub = self._publishing_channel()
        self._join()

        while True:
            # Deliveries, control commands, announcements and the completions job threads hand
            # back are all dispatched from in here, on this thread.
            self.conn.process_data_events(time_limit=0.1)
            now = time.monotonic()
            if self.stop_requested and not self.draining:
                self._begin_drain()
            if self.draining and not self.held:
                self._announce()  # §5.5: the last word is "draining": true
                self.conn.close()
                self.executor.shutdown(wait=True)
                log.info("drained; exiting")
                return
            self._forget_silent_peers(now)
            if now - self.last_announced >= self._interval():
                self._reconcile()  # also retries queues whose consume failed
                self._announce()

    def _publishing_channel(self) -> Any:
        ch = self.conn.channel()
        ch.confirm_delivery()  # §3: jobs and replies are published with publisher confirms
        return ch

    def _publish(self, exchange: str, key: str, body: bytes, props: pika.BasicProperties,
                 mandatory: bool) -> None:
        """Publish and wait for the broker's confirm. Raises UnroutableError (mandatory and no
        queue took it), NackError (refused), or a channel error after reopening the channel."""
        try:
            self.pub.basic_publish(exchange, key, body, props, mandatory=mandatory)
        except (pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError):
            self.pub = self._publishing_channel()
            raise

    # --- joining (§5.4) --------------------------------------------------------------------------

    def _join(self) -> None:
        ch = self.conn.channel()
        ns = self.cfg.name_of
        # §2: a worker MAY declare the exchanges and <ns>.dead, with exactly these arguments.
        # We do, so we can bind our private queues and dead-letter before any leader exists.
        ch.exchange_declare(ns("topology"), "fanout", durable=True)
        ch.exchange_declare(ns("control"), "topic", durable=True)
        ch.exchange_declare(ns("dlx"), "fanout", durable=True)
        ch.queue_declare(ns("dead"), durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(ns("dead"), ns("dlx"), routing_key="")

        # Control first, then topology, and only then announce: the answers our announcement
        # provokes (the leader re-announces its topics at once) must find us listening.
        control_q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(control_q, ns("control"), routing_key=self.instance_id)
        ch.basic_consume(control_q, self._on_control, auto_ack=True)
        topology_q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(topology_q, ns("topology"), routing_key="")
        ch.basic_consume(topology_q, self._on_announcement, auto_ack=True)
        self._reconcile()  # after a reconnect we may already know topic queues
        self._announce()

    def _announce(self) -> None:
        """§3.5: who we are, our patterns, our enablement, the queues we consume now."""
        self.sequence += 1
        self.last_announced = time.monotonic()
        body = {
            "schema": ANNOUNCEMENT_SCHEMA,
            "instance": {
                "id": self.instance_id, "name": self.cfg.name, "role": "worker",
                "cluster": self.cfg.cluster, "endpoints": [], "version": VERSION,
                "host": self.host, "pid": os.getpid(),
            },
            "consumers": list(self.cfg.patterns),
            "enablement": self.enablement.to_json(),
            "topics": sorted(t for t, c in self.consumers.items() if c.tag),
            "interval_ms": int(self._interval() * 1000),
            "sequence": self.sequence,
            "draining": self.draining,
            "sent_at": now_rfc3339(),
        }
        props = pika.BasicProperties(content_type="application/json", type=ANNOUNCEMENT_SCHEMA,
                                     delivery_mode=1)  # not persistent, not mandatory
        try:
            self._publish(self.cfg.name_of("topology"), "", _dump(body), props, mandatory=False)
        except (pika.exceptions.NackError, pika.exceptions.ChannelClosed,
                pika.exceptions.ChannelWrongStateError) as e:
            log.warning("announcement not sent (%r); the next heartbeat says it again", e)

    def _interval(self) -> float:
        """Our heartbeat period: ours, or a leader's if that is shorter.

        A peer drops us after *its own* timeout (§3.5), which the leader derives from its own
        heartbeat interval: a leader started with `--heartbeat-interval 1s` forgets an instance
        after about 1.5 s of silence (observed; the document only gives the 20 s default). So
        we announce at least as often as the most frequent leader does, or we would keep
        vanishing from its topology and live enablement changes would fail with "no live
        instance"."""
        periods = [p.interval for p in self.peers.values() if p.role == "leader" and p.interval]
        return min([self.cfg.heartbeat_interval] + periods)

    def _on_announcement(self, _ch: Any, _method: Any, _props: Any, body: bytes) -> None:
        try:
            a = json.loads(body)
            inst = a["instance"]
            iid, role, pid, seq = inst["id"], inst["role"], int(inst["pid"]), int(a["sequence"])
        except (ValueError, KeyError, TypeError):
            log.debug("ignoring an announcement we cannot read")
            return
        if iid == self.instance_id or a.get("schema") != ANNOUNCEMENT_SCHEMA:
            return
        prev = self.peers.get(iid)
        # sequence and pid together let us drop a heartbeat that arrives late (§3.5).
        if prev and prev.pid == pid and seq <= prev.sequence:
            return
        topics = {t for t in a.get("topics") or [] if is_topic(t)}
        interval = a.get("interval_ms")
        interval = interval / 1000 if is_int(interval, 1, 2**63) else None
        self.peers[iid] = Peer(role, pid, seq, time.monotonic(), topics, interval)
        if prev is None:
            log.info("instance joined: %s %s (%s)", role, inst.get("name"), iid)
        if role == "leader" and not topics <= self.known_topics:
            log.info("leader %s announced topic queues %s", inst.get("name"),
                     ", ".join(sorted(topics - self.known_topics)))
            self.known_topics |= topics
            self._reconcile()
        if prev is None:
            # §3.5: announce when we see a new peer, so it need not wait a whole interval.
            self._announce()

    def _forget_silent_peers(self, now: float) -> None:
        for iid, peer in list(self.peers.items()):
            if now - peer.last_seen > self.cfg.heartbeat_timeout:
                log.info("instance left: %s %s (no announcement for %.0f s)", peer.role, iid,
                         self.cfg.heartbeat_timeout)
                del self.peers[iid]

    # --- control commands (§3.6) --------------------------------------------------------------

    def _on_control(self, _ch: Any, _method: Any, _props: Any, body: bytes) -> None:
        try:
            cmd = json.loads(body)
            assert cmd.get("schema") == CONTROL_SCHEMA, f"schema {cmd.get('schema')!r}"
            assert cmd.get("target") == self.instance_id, "not for us"
            action, cid = cmd["action"], str(cmd["id"])
            assert action in ("enable", "disable", "exclusive", "drain"), f"action {action!r}"
            pattern = cmd.get("topic")
            assert action == "drain" or is_pattern(pattern), f"topic {pattern!r}"
        except (ValueError, KeyError, TypeError, AssertionError) as e:
            log.warning("ignoring a control command we cannot obey: %s", e)
            return
        if cid in self.seen_commands:
            return
        _remember(self.seen_commands, cid, 10_000)
        log.info("control command %s %s", action, pattern or "")
        if action == "drain":
            self.stop_requested = True
            return
        self.enablement.apply(action, pattern)  # 1. apply it to the enablement
        self._save_state(self.instance_id, self.enablement)
        self._reconcile()  # 2. stop or start consuming accordingly
        self._announce()  # 3. announce: the leader waits for exactly this enablement

    # --- which topic queues we consume ----------------------------------------------------------

    def _wanted_topics(self) -> set[str]:
        """§5.4: announced by a leader, matched by one of our patterns, allowed by enablement."""
        if self.draining:
            return set()
        return {
            t for t in self.known_topics
            if any(pattern_matches(p, t) for p in self.cfg.patterns) and self.enablement.allows(t)
        }

    def _reconcile(self) -> None:
        wanted = self._wanted_topics()
        active = {t for t, c in self.consumers.items() if c.tag}
        for topic in sorted(active - wanted):
            self._stop_consuming(topic)
        for topic in sorted(wanted - active):
            self._start_consuming(topic)
        if active != {t for t, c in self.consumers.items() if c.tag}:
            self._announce()  # §3.5: at once on every change

    def _start_consuming(self, topic: str) -> None:
        queue = self.cfg.name_of(f"jobs.{routing_key(topic)}")
        tc = self.consumers.get(topic)
        if tc is None or not tc.channel.is_open:
            ch = self.conn.channel()
            # §5.2: manual acks with a prefetch. Per channel, i.e. per topic queue here.
            ch.basic_qos(prefetch_count=self.cfg.prefetch)
            ch.add_on_cancel_callback(functools.partial(self._on_broker_cancel, topic))
            tc = self.consumers[topic] = TopicConsumer(ch, None)
        try:
            tc.tag = tc.channel.basic_consume(
                queue, functools.partial(self._on_job, topic), auto_ack=False
            )
            log.info("consuming %s", queue)
        except pika.exceptions.ChannelClosedByBroker as e:
            # 404: the queue does not exist (any more). Only this channel is closed; we try
            # again on the next heartbeat tick.
            log.warning("cannot consume %s: %s", queue, e)
            self.consumers.pop(topic, None)

    def _stop_consuming(self, topic: str) -> None:
        tc = self.consumers[topic]
        if tc.tag and tc.channel.is_open:
            # basic.cancel: no new deliveries. pika itself nacks (requeues) deliveries it had
            # buffered but not yet handed to us.
            tc.channel.basic_cancel(tc.tag)
        tc.tag = None
        log.info("stopped consuming %s", self.cfg.name_of(f"jobs.{routing_key(topic)}"))
        # §3.6: a job of a topic just disabled that has not started goes back to its queue.
        for key, h in list(self.held.items()):
            if h.topic == topic and h.future and h.future.cancel():
                del self.held[key]
                self._nack(h, requeue=True)

    def _on_broker_cancel(self, topic: str, _frame: Any) -> None:
        """RabbitMQ cancels our consumer when the queue is deleted: try again on the next tick."""
        log.warning("the broker cancelled our consumer of %s", topic)
        if topic in self.consumers:
            self.consumers[topic].tag = None

    # --- a delivery (§5.2) ----------------------------------------------------------------------

    def _on_job(self, topic: str, ch: Any, method: Any, props: pika.BasicProperties,
                body: bytes) -> None:
        tc = self.consumers.get(topic)
        if self.draining or tc is None or tc.tag is None:
            # Arrived while we were stopping this consumer: give it back untouched.
            ch.basic_nack(method.delivery_tag, requeue=True)
            return

        # 1. Decode and validate; a job for another topic than this queue's is refused too.
        try:
            job = json.loads(body)
            problem = job_problem(job)
        except (ValueError, UnicodeDecodeError) as e:
            job, problem = None, f"the body is not JSON: {e}"
        if problem is None and job["topic"] != topic:
            problem = f"the job's topic {job['topic']!r} is not the topic of its queue ({topic!r})"
        if problem is not None:
            log.warning("dead-lettering a delivery from %s: %s", topic, problem)
            self._dead_letter(ch, method, props, body, f"malformed job: {problem}")
            return

        headers = props.headers or {}
        traceparent, trace_id = child_traceparent(_str(headers.get("traceparent")))
        # §3.3: x-delivery-count if the quorum queue set it, else 1 if only `redelivered`.
        count = headers.get("x-delivery-count")
        redeliveries = int(count) if isinstance(count, int) else (1 if method.redelivered else 0)
        h = Held(self.session, self.conn, ch, method, props, body, topic, job, traceparent,
                 trace_id, redeliveries)

        # 2. De-duplicate: a completion we already had confirmed means this is a redelivery
        # after a lost ack (e.g. a broker restart). Ack it, do not run the job again.
        if (job["id"], job["attempt"]) in self.confirmed:
            log.info("job %s attempt %d already completed; acking the redelivery trace_id=%s",
                     job["id"], job["attempt"], trace_id)
            ch.basic_ack(method.delivery_tag)
            return

        self.held[self._key(h)] = h
        h.future = self.executor.submit(self._run, h)

    @staticmethod
    def _key(h: Held) -> tuple[int, int, int]:
        return (h.session, h.channel.channel_number, h.method.delivery_tag)

    def _run(self, h: Held) -> None:
        """On a job thread: run the job, then hand the completion to the connection thread."""
        job = h.job
        started_at = now_rfc3339()
        log.info("job %s attempt %d/%d on %s: %d input(s) trace_id=%s", job["id"],
                 job["attempt"], job["max_attempts"], h.topic, len(job.get("inputs", [])),
                 h.trace_id)
        # 3. Optional started event, only for jobs that take a while (§3.2): for quick jobs it
        # would be one more message for nothing.
        timer = None
        if self.cfg.started_delay >= 0:
            timer = threading.Timer(self.cfg.started_delay, self._hand_back, (h, functools.partial(
                self._publish_started, h, started_at)))
            timer.daemon = True
            timer.start()
        try:
            # 4 and 5. Fetch the inputs (verified), run, store the outputs by content.
            result, outputs, properties = run_upper(job, self.store)
        except Exception as e:  # a bug of ours: say so, and let the leader retry
            log.exception("job %s crashed trace_id=%s", job["id"], h.trace_id)
            result, outputs, properties = (
                {"status": "FAILED", "reason": f"worker error: {e!r}", "retry": True}, [], {})
        if timer:
            timer.cancel()
        completion = {
            "schema": COMPLETION_SCHEMA, "job_id": job["id"], "attempt": job["attempt"],
            "worker": self.instance_id, "worker_name": self.cfg.name, "result": result,
            "outputs": outputs, "properties": properties,
            "started_at": started_at, "finished_at": now_rfc3339(),
            "redeliveries": h.redeliveries,
        }
        log.info("job %s attempt %d: %s%s trace_id=%s", job["id"], job["attempt"],
                 result["status"], f" ({result['reason']})" if "reason" in result else "",
                 h.trace_id)
        self._hand_back(h, functools.partial(self._settle, h, completion))

    def _hand_back(self, h: Held, fn: Callable[[], None]) -> None:
        try:
            h.conn.add_callback_threadsafe(fn)
        except pika.exceptions.ConnectionWrongStateError:
            pass  # that connection is gone; RabbitMQ redelivers the job

    def _publish_started(self, h: Held, started_at: str) -> None:
        if h.session != self.session or self.conn is None:
            return
        body = {
            "schema": STARTED_SCHEMA, "job_id": h.job["id"], "attempt": h.job["attempt"],
            "worker": self.instance_id, "worker_name": self.cfg.name,
            "redeliveries": h.redeliveries, "started_at": started_at,
        }
        try:
            self._reply(h, STARTED_SCHEMA, body)
        except Exception as e:  # fire-and-forget: losing one loses nothing (§3.2)
            log.info("started event for job %s not sent: %r", h.job["id"], e)

    def _reply(self, h: Held, schema: str, body: dict) -> None:
        """§3.4: replies go to the default exchange keyed by the job's reply_to, mandatory,
        persistent, message_id = job id, with our traceparent (same trace, our span)."""
        props = pika.BasicProperties(
            content_type="application/json", type=schema, delivery_mode=2,
            message_id=h.job["id"], headers={"traceparent": h.traceparent},
        )
        self._publish("", h.job["reply_to"], _dump(body), props, mandatory=True)

    def _settle(self, h: Held, completion: dict) -> None:
        """On the connection thread. 6: publish the completion, wait for the confirm, and only
        then ack. 7: not confirmed -> back to the queue; unroutable -> dead-letter."""
        key = self._key(h)
        if self.held.pop(key, None) is None or h.session != self.session:
            return  # its delivery died with an old connection
        job = h.job
        try:
            self._reply(h, COMPLETION_SCHEMA, completion)
        except pika.exceptions.UnroutableError:
            # No queue took it: the reply queue does not exist, so no leader would ever read
            # it. Running the job again would not help either.
            reason = (f"completion unroutable: the reply queue {job['reply_to']!r} does not "
                      f"exist")
            log.error("job %s attempt %d: %s; dead-lettering the job trace_id=%s",
                      job["id"], job["attempt"], reason, h.trace_id)
            self._dead_letter(h.channel, h.method, h.props, h.body, reason)
            return
        except pika.exceptions.NackError:
            log.warning("job %s attempt %d: the broker refused the completion; returning the "
                        "job to its queue trace_id=%s", job["id"], job["attempt"], h.trace_id)
            self._nack(h, requeue=True)
            return
        except (pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError) as e:
            log.warning("job %s: publishing channel closed (%r); returning the job to its "
                        "queue trace_id=%s", job["id"], e, h.trace_id)
            self._nack(h, requeue=True)
            return
        # Confirmed: remember it before acking, so a redelivery after a lost ack is only acked.
        _remember(self.confirmed, (job["id"], job["attempt"]), DEDUP_CAPACITY)
        self._ack(h)

    def _ack(self, h: Held) -> None:
        try:
            h.channel.basic_ack(h.method.delivery_tag)
        except (pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError):
            pass  # the delivery returns to the queue; the de-dup set catches it

    def _nack(self, h: Held, requeue: bool) -> None:
        try:
            h.channel.basic_nack(h.method.delivery_tag, requeue=requeue)
        except (pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError):
            pass  # a closed channel returns its unacked deliveries anyway

    # --- dead letters (§5.6) --------------------------------------------------------------------

    def _dead_letter(self, ch: Any, method: Any, props: pika.BasicProperties, body: bytes,
                     reason: str) -> None:
        """Publish the message, body unchanged, to <ns>.dlx with the reason headers, then ack
        the delivery. If that publish fails, reject it without requeue: the queue's own
        x-dead-letter-exchange then takes it (without our reason, but not lost)."""
        headers = {
            "x-offloader-reason": reason[:1000],
            "x-offloader-exchange": method.exchange,
            "x-offloader-routing-key": method.routing_key,
            "x-offloader-dead-at": now_rfc3339(),
            "x-offloader-worker": self.instance_id,
        }
        if props.type:
            headers["x-offloader-type"] = props.type
        if props.headers and "traceparent" in props.headers:
            headers["traceparent"] = props.headers["traceparent"]  # keeps the trace findable
        dl_props = pika.BasicProperties(
            content_type=props.content_type, type=DEAD_LETTER_TYPE, delivery_mode=2,
            message_id=props.message_id, reply_to=props.reply_to, headers=headers,
        )
        try:
            self._publish(self.cfg.name_of("dlx"), method.routing_key, body, dl_props,
                          mandatory=True)
            settle = functools.partial(ch.basic_ack, method.delivery_tag)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError,
                pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError) as e:
            log.error("dead-letter publish failed (%r); rejecting the delivery", e)
            settle = functools.partial(ch.basic_reject, method.delivery_tag, requeue=False)
        try:
            settle()
        except (pika.exceptions.ChannelClosed, pika.exceptions.ChannelWrongStateError):
            pass  # the delivery returns to its queue and comes back to be refused again

    # --- leaving (§5.5) -------------------------------------------------------------------------

    def _begin_drain(self) -> None:
        """Cancel our consumers, give back what we have not started, tell the others. The main
        loop then waits for the jobs in hand to be settled, announces once more and exits."""
        self.draining = True
        for topic in [t for t, c in self.consumers.items() if c.tag]:
            self._stop_consuming(topic)
        self._announce()
        log.info("draining: %d job(s) in hand", len(self.held))


def _remember(od: OrderedDict, key: Any, capacity: int) -> None:
    od[key] = None
    od.move_to_end(key)
    while len(od) > capacity:
        od.popitem(last=False)


def _str(v: Any) -> Optional[str]:
    return v.decode() if isinstance(v, bytes) else v if isinstance(v, str) else None


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def main() -> int:
    cfg = Config.load()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    worker = Worker(cfg)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
