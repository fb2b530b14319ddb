"""Every workaround of faust-streaming and aiokafka internals WIMS relies on, in one place.

Nothing outside this package reaches into those libraries' private attributes or patches
their classes. Each workaround below names the exact versions it was verified against
(the project's pins), what upstream behaviour it works around, what it does on other
versions, and the test that fails without it. ``docs/decisions.md`` tells the story of each.

On a version it was not verified against, a workaround either

- ``refuse``\\ s: the worker does not start (:func:`require_verified`), because without it
  messages are lost or skipped and nothing would show it; or
- falls back to the ``plain`` library path with one warning, where that path is only
  slower, never wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Workaround:
    name: str
    library: str  # distribution name, as pip knows it
    verified: frozenset[str]
    upstream: str  # the library behaviour worked around, with its source location
    other_versions: str  # "refuse" or "plain"
    where: str  # the function in this package
    test: str  # the test that fails without it


FAUST = "faust-streaming"
AIOKAFKA = "aiokafka"

WORKAROUNDS: tuple[Workaround, ...] = (
    Workaround(
        name="hold-input-during-rebalance",
        library=FAUST,
        verified=frozenset({"0.15.3"}),
        upstream=(
            "faust/transport/drivers/aiokafka.py AIOKafkaConsumerThread.getmany passes faust's "
            "live set of active partitions to aiokafka: records fetched between resuming the "
            "input partitions and the streams flowing are dropped unprocessed, and an empty set "
            "reads as 'every partition' (aiokafka/consumer/fetcher.py fetched_records)"
        ),
        other_versions="refuse",
        where="shared.infrastructure.compat.faust_worker.install (FetchablePartitions)",
        test=(
            "tests/unit/test_faust_compat.py, "
            "tests/integration/test_integrity_worker.py::test_a_killed_worker_recovers_*"
        ),
    ),
    Workaround(
        name="producer-knows-changelogs",
        library=FAUST,
        verified=frozenset({"0.15.3"}),
        upstream=(
            "faust/tables/table.py on_key_set -> send_changelog -> channels.as_future_message "
            "(eager_partitioning) -> transport/drivers/aiokafka.py Producer.key_partition -> "
            "aiokafka producer._partition: list(metadata.partitions_for_topic(topic)) raises "
            "TypeError while the producer's metadata does not list the changelog topic (right "
            "after faust created it, or after a metadata refresh that lost it)"
        ),
        other_versions="refuse",
        where=(
            "shared.infrastructure.compat.faust_worker.install (key_partition raises TopicPartitionsUnknown, "
            "a transient error) and learn_changelog_partitions (input held until known)"
        ),
        test="tests/integration/test_compat.py",
    ),
    Workaround(
        name="durable-table-writes",
        library=FAUST,
        verified=frozenset({"0.15.3"}),
        upstream=(
            "faust/tables/base.py send_changelog queues the record in faust's producer buffer, "
            "whose flush before an offset commit gives up after 0.1 s without progress "
            "(faust/transport/producer.py); a table write outside an agent has no current "
            "event to take its partition from"
        ),
        other_versions="refuse",
        where="shared.infrastructure.compat.faust_worker.put_durably / send_raw",
        test="tests/integration/test_maasp_worker.py::test_exceedance_alerts_once_each_across_a_sigkill_*",
    ),
    Workaround(
        name="input-with-its-tables",
        library=FAUST,
        verified=frozenset({"0.15.3"}),
        upstream=(
            "faust/assignor/partition_assignor.py _get_copartitioned_groups groups topics by "
            "the members subscribing them and skips a topic missing from the leader's metadata "
            "('Ignoring missing topic'), so an input partition and the table changelog "
            "partition of the same number can go to different workers or to none; the worker "
            "then reads state it never recovered (faust/stores/memory.py on_recovery_completed "
            "drops the keys of partitions that are not its actives). Asking for another "
            "assignment uses aiokafka's GroupCoordinator.request_rejoin"
        ),
        other_versions="refuse",
        where=(
            "shared.infrastructure.compat.faust_worker.note_state_partitions (with "
            "FetchablePartitions, active_partitions and request_rebalance)"
        ),
        test=(
            "tests/unit/test_faust_compat.py::test_input_without_its_table_partition_is_held, "
            "tests/integration/test_maasp_worker.py::test_no_annulus_judged_without_its_*"
        ),
    ),
    Workaround(
        name="record-batches",
        library=AIOKAFKA,
        verified=frozenset({"0.14.0"}),
        upstream=(
            "aiokafka/consumer/fetcher.py fetched_records builds a ConsumerRecord per message "
            "through a generator (about 0.7 us a message); RecordTaker takes whole record "
            "batches from the fetch buffer instead"
        ),
        other_versions="plain",
        where="shared.infrastructure.compat.record_batches.RecordTaker",
        test="tests/integration/test_maasp_fetch.py",
    ),
    Workaround(
        name="add-batch-early-timeout",
        library=AIOKAFKA,
        verified=frozenset({"0.14.0"}),
        upstream=(
            "aiokafka/producer/message_accumulator.py add_batch subtracts the total time "
            "waited so far on every wake-up, so several pushes waiting for one partition time "
            "out long before their timeout (KafkaTimeoutError) although Kafka is healthy"
        ),
        other_versions="plain",
        where="shared.infrastructure.compat.producer_batches.send_batch_until",
        test="tests/integration/test_compat.py::test_many_pushes_waiting_for_one_partition_*",
    ),
)


class UnverifiedLibrary(RuntimeError):
    """A workaround that must not run on an unverified version, with no safe fallback."""


def installed(library: str) -> str | None:
    try:
        return version(library)
    except PackageNotFoundError:
        return None


def is_verified(w: Workaround) -> bool:
    return installed(w.library) in w.verified


def require_verified(library: str) -> None:
    """Refuse to start a worker whose ``refuse`` workarounds of ``library`` were not verified
    for the installed version: running without them loses messages silently."""
    for w in WORKAROUNDS:
        if w.library == library and w.other_versions == "refuse" and not is_verified(w):
            raise UnverifiedLibrary(
                f"{library} {installed(library)} is not a version the workaround {w.name!r} "
                f"was verified against ({', '.join(sorted(w.verified))}): {w.upstream}. "
                f"Verify it ({w.test}) and add the version in shared/infrastructure/compat/__init__.py."
            )


def plain_path_warning(name: str) -> bool:
    """True when ``name`` may use its workaround; else logs once why the plain path runs."""
    w = next(w for w in WORKAROUNDS if w.name == name)
    if is_verified(w):
        return True
    if name not in _warned:
        _warned.add(name)
        log.warning(
            "%s %s: the %s workaround is verified for %s only; using the library's own path",
            w.library,
            installed(w.library),
            w.name,
            ", ".join(sorted(w.verified)),
        )
    return False


_warned: set[str] = set()
