"""Dead letters for people: list what the workers gave up on, and replay it after a fix.

``wims dead-letters list`` and ``wims dead-letters replay`` (services/cli.py) are thin
wrappers around this module; the end-to-end tests and the soak test (tests/soak) read the
dead letters with the same ``read_dead_letters``. It lives beside the CLI in services/, not
in shared/, because no service needs it: the workers only write dead letters, through the
contract in shared/contracts/dead_letters.py, and keep their imports to that.

Reading never hangs: the end offsets of wims.dead-letters are taken first, then each
partition is read from its beginning up to that end, within a deadline. A record given up
on twice (a replayed batch) is one dead letter: its id is the source position.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.contracts import topics
from shared.contracts.dead_letters import DeadLetter
from shared.infrastructure.compat.record_batches import refresh_metadata
from shared.infrastructure.settings import Settings

TOPIC = topics.DEAD_LETTERS.name


class DeadLetterError(Exception):
    """Kafka unreachable, a deadline passed, or an argument that names nothing: the message
    is for the person at the terminal."""


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter as read: the contract's fields, how often it was written and whether
    its source key is known (a letter written before the contract has only the value)."""

    letter: DeadLetter
    key_known: bool
    times: int = 1

    @property
    def id(self) -> str:
        return self.letter.id

    def as_json(self) -> dict[str, Any]:
        dl = self.letter
        return {
            "id": dl.id,
            "service": dl.service,
            "topic": dl.topic,
            "partition": dl.partition,
            "offset": dl.offset,
            "reason": dl.reason,
            "error": dl.error,
            "ts": dl.ts.isoformat(),
            "times": self.times,
            "replayable": self.key_known,
            "key": None if dl.key is None else dl.key.decode("utf-8", "backslashreplace"),
            "value": None if dl.value is None else dl.value.decode("utf-8", "backslashreplace"),
        }


@dataclass
class Reading:
    """What one pass over wims.dead-letters found."""

    letters: list[Letter] = field(default_factory=list)
    records: int = 0
    #: (partition, offset, error) of records on the topic that are not dead letters at all
    unreadable: list[tuple[int, int, str]] = field(default_factory=list)


def _parse(value: bytes) -> Letter:
    letter = DeadLetter.decode(value)
    # Letters written before shared/contracts/dead_letters.py (the MAASP worker's first format) carry
    # {topic, partition, offset, error, raw}: no key, and the value only as text.
    doc = orjson.loads(value)
    return Letter(letter, key_known="value_b64" in doc)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time with a zone, or an age such as 30s, 15m, 2h, 7d."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: float(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2026-12-01T10:00:00Z) nor an age "
            "(30s, 15m, 2h, 7d)"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z or an offset such as +01:00")
    return when


def select(
    letters: Iterable[Letter],
    *,
    topic: str | None = None,
    service: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
) -> list[Letter]:
    return [
        x
        for x in letters
        if (topic is None or x.letter.topic == topic)
        and (service is None or x.letter.service == service)
        and (reason is None or x.letter.reason == reason)
        and (since is None or x.letter.ts >= since)
    ]


def _unreachable(settings: Settings, exc: BaseException) -> DeadLetterError:
    text = str(exc)
    name = type(exc).__name__
    detail = text if text.startswith(name) else f"{name}: {text}" if text else name
    return DeadLetterError(f"Kafka at {settings.kafka_bootstrap} is unreachable ({detail})")


async def read_dead_letters(settings: Settings, timeout_s: float = 30.0) -> Reading:
    """Every dead letter on wims.dead-letters, from the beginning to the end it had when the
    read began, deduplicated by id (the newest copy kept, ``times`` counting the copies),
    oldest first. Raises DeadLetterError when Kafka does not answer within ``timeout_s``."""
    try:
        return await asyncio.wait_for(_read(settings), timeout_s)
    except TimeoutError as exc:
        raise DeadLetterError(
            f"reading {TOPIC} from Kafka at {settings.kafka_bootstrap} took more than "
            f"{timeout_s:.0f} s"
        ) from exc
    except (KafkaError, OSError) as exc:
        raise _unreachable(settings, exc) from exc


async def _read(settings: Settings) -> Reading:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,  # no offsets committed: listing changes nothing for anybody
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    try:
        partitions = consumer.partitions_for_topic(TOPIC)
        if not partitions:
            await refresh_metadata(consumer)
            partitions = consumer.partitions_for_topic(TOPIC)
        reading = Reading()
        if not partitions:
            return reading  # the topic does not exist yet: nothing was ever dead-lettered
        tps = [TopicPartition(TOPIC, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)  # retention removed everything there was
        by_id: dict[str, Letter] = {}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break  # written after the read began: the next list shows it
                    reading.records += 1
                    try:
                        letter = _parse(record.value)
                    except (ValueError, KeyError, TypeError) as exc:
                        reading.unreadable.append((tp.partition, record.offset, repr(exc)))
                        continue
                    before = by_id.get(letter.id)
                    if before is not None:
                        letter = Letter(letter.letter, letter.key_known, before.times + 1)
                    by_id[letter.id] = letter
            for tp in list(pending):
                # position, not the last record seen: transaction markers take offsets too
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        reading.letters = sorted(by_id.values(), key=lambda x: (x.letter.ts, x.id))
        return reading
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class Sent:
    letter: Letter
    partition: int | None  # where it went; None for a dry run
    offset: int | None


async def replay(
    settings: Settings, letters: Sequence[Letter], dry_run: bool = False, timeout_s: float = 30.0
) -> list[Sent]:
    """Send each letter's source key and value back to its source topic and wait for every
    ack (acks=all). A letter whose key is unknown must be filtered out by the caller."""
    if dry_run:
        return [Sent(x, None, None) for x in letters]
    try:
        return await asyncio.wait_for(_send(settings, letters), timeout_s)
    except TimeoutError as exc:
        raise DeadLetterError(
            f"Kafka at {settings.kafka_bootstrap} did not acknowledge the replay within "
            f"{timeout_s:.0f} s; records acknowledged before that are on their topics, and "
            "replaying them again changes nothing"
        ) from exc
    except (KafkaError, OSError) as exc:
        raise _unreachable(settings, exc) from exc


async def _send(settings: Settings, letters: Sequence[Letter]) -> list[Sent]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", request_timeout_ms=10_000
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    try:
        sent = []
        for x in letters:
            dl = x.letter
            # With a key the producer's default partitioner places it where every WIMS
            # producer placed the original (co-partitioned joins stay right); a record that
            # had no key goes back to the partition it came from.
            partition = dl.partition if dl.key is None else None
            meta = await producer.send_and_wait(
                dl.topic, value=dl.value, key=dl.key, partition=partition
            )
            sent.append(Sent(x, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


# --- the command line (wims dead-letters ...) -------------------------------------------------


def _line(x: Letter) -> str:
    dl = x.letter
    error = " ".join(dl.error.split()) or "-"
    times = f" (x{x.times})" if x.times > 1 else ""
    when = dl.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{dl.id}  {dl.service}  {dl.reason}  {when}  {error}{times}"


def _quiet_kafka_client() -> None:
    # aiokafka logs every failed connection attempt at ERROR; the command says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _read_or_exit(settings: Settings, timeout_s: float) -> Reading | int:
    _quiet_kafka_client()
    try:
        reading = asyncio.run(read_dead_letters(settings, timeout_s))
    except DeadLetterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for partition, offset, error in reading.unreadable:
        print(
            f"warning: {TOPIC}[{partition}]@{offset} is not a dead letter ({error}); left out",
            file=sys.stderr,
        )
    return reading


def _since(args: Any) -> datetime | int | None:
    if not args.since:
        return None
    try:
        return parse_since(args.since)
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return 2


def cmd_list(settings: Settings, args: Any) -> int:
    since = _since(args)
    if isinstance(since, int):
        return since
    reading = _read_or_exit(settings, args.timeout)
    if isinstance(reading, int):
        return reading
    chosen = select(
        reading.letters, topic=args.topic, service=args.service, reason=args.reason, since=since
    )
    if args.json:
        print(
            orjson.dumps(
                {"count": len(chosen), "dead_letters": [x.as_json() for x in chosen]}
            ).decode()
        )
        return 0
    for x in chosen:
        print(_line(x))
    total = len(reading.letters)
    shown = f"{len(chosen)} of {total}" if len(chosen) != total else f"{total}"
    print(f"{shown} dead letter{'s' if total != 1 else ''}")
    return 0


def cmd_replay(settings: Settings, args: Any) -> int:
    if not (args.id or args.all or args.topic):
        print(
            "error: replay: say what to replay: --id ID (repeatable), --topic T or --all",
            file=sys.stderr,
        )
        return 2
    reading = _read_or_exit(settings, args.timeout)
    if isinstance(reading, int):
        return reading
    chosen = select(reading.letters, topic=args.topic)
    if args.id:
        known = {x.id: x for x in chosen}
        missing = [i for i in args.id if i not in known]
        if missing:
            where = f" from topic {args.topic}" if args.topic else ""
            print(
                f"error: --id: no dead letter{where} with id {', '.join(missing)} "
                "(ids are topic:partition:offset, as `wims dead-letters list` shows them); "
                "nothing sent",
                file=sys.stderr,
            )
            return 2
        chosen = [known[i] for i in dict.fromkeys(args.id)]
    ready = [x for x in chosen if x.key_known]
    skipped = [x for x in chosen if not x.key_known]
    for x in skipped:
        print(
            f"skipped {x.id}: written before dead letters kept the source key, so its key is "
            "unknown and a replay could land on the wrong partition; republish the source "
            "instead (for wims.annulus-config: wims publish-annulus-config --annulus-id N)"
        )
    try:
        sent = asyncio.run(replay(settings, ready, dry_run=args.dry_run, timeout_s=args.timeout))
    except DeadLetterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for s in sent:
        dl = s.letter.letter
        key = "-" if dl.key is None else dl.key.decode("utf-8", "backslashreplace")
        size = 0 if dl.value is None else len(dl.value)
        if s.partition is None:
            print(f"would send {s.letter.id} -> {dl.topic} key {key} ({size} bytes)")
        else:
            print(
                f"sent {s.letter.id} -> {dl.topic}[{s.partition}]@{s.offset} key {key} "
                f"({size} bytes)"
            )
    verb = "would send" if args.dry_run else "sent"
    print(f"{verb} {len(sent)}, skipped {len(skipped)}")
    return 1 if skipped else 0


REPLAY_DOC = """\
Send chosen dead letters' original key and value back to their source topic, and wait
until Kafka acknowledged each. Replay only after fixing what made them fail: a consumer
that still cannot process one dead-letters it again (under the same id).

A replay is idempotent in effect: every WIMS consumer deduplicates by event id (readings by
annulus, time and source; alerts, snapshots and task events by their derived ids), so a
record replayed twice is sent twice and changes nothing the second time. Dead letters
written before the source key was kept cannot be replayed (their key is unknown): they are
skipped with a message, and the exit status is then 1."""


def add_arguments(parser: Any) -> None:
    """The ``dead-letters`` subcommands, under the parser services/cli.py gives."""
    import argparse

    sub = parser.add_subparsers(dest="dead_letters_command", required=True)
    listing = sub.add_parser(
        "list",
        help="dead letters on wims.dead-letters, one a line, deduplicated by id",
        description="Read wims.dead-letters from the beginning to its current end (then "
        "stop) and print one line per dead letter: id (topic:partition:offset of the "
        "source record), service, reason, time, error; then the count.",
    )
    listing.add_argument("--topic", help="only dead letters of this source topic")
    listing.add_argument("--service", help="only those this service gave up on")
    listing.add_argument("--reason", help="undecodable, invalid or unprocessable")
    listing.add_argument("--since", help="ISO 8601 time with a zone, or an age: 30m, 2h, 7d")
    listing.add_argument(
        "--json", action="store_true", help='one JSON document {"count", "dead_letters"}'
    )
    listing.add_argument("--timeout", type=float, default=30.0, help="seconds for Kafka")
    listing.set_defaults(func=cmd_list)
    rep = sub.add_parser(
        "replay",
        help="send dead letters back to their source topic (idempotent in effect)",
        description=REPLAY_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument(
        "--id", action="append", default=[], metavar="ID", help="topic:partition:offset"
    )
    rep.add_argument("--all", action="store_true", help="every dead letter (with --topic: of it)")
    rep.add_argument("--topic", help="only dead letters of this source topic")
    rep.add_argument(
        "--dry-run", action="store_true", help="print what would be sent, send nothing"
    )
    rep.add_argument("--timeout", type=float, default=30.0, help="seconds for Kafka")
    rep.set_defaults(func=cmd_replay)
