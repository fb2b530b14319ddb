"""Missing data: staleness with the well's own time or the default; a missing MAASP."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.missing_data import (
    DATA_STALE_AFTER_S,
    is_maasp_missing,
    is_stale,
    stale_after,
)

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
MAPPED = NOW - timedelta(days=30)


def test_the_default_is_a_day_and_a_well_may_set_its_own() -> None:
    assert stale_after(None) == DATA_STALE_AFTER_S == 86400
    assert stale_after(None, 600) == 600
    assert stale_after(3600, 600) == 3600
    with pytest.raises(ValueError):
        stale_after(0)


def test_stale_after_more_than_the_time_without_a_good_reading() -> None:
    day = 86400
    assert not is_stale(NOW - timedelta(seconds=day), MAPPED, NOW, day)
    assert is_stale(NOW - timedelta(seconds=day + 1), MAPPED, NOW, day)


def test_a_tag_that_never_sent_counts_from_its_mapping() -> None:
    assert not is_stale(None, NOW - timedelta(hours=1), NOW, 86400)
    assert is_stale(None, NOW - timedelta(hours=25), NOW, 86400)


def test_maasp_missing_after_the_grace_time_only() -> None:
    new = NOW - timedelta(minutes=10)
    old = NOW - timedelta(hours=2)
    assert not is_maasp_missing(False, None, new, NOW, 3600)
    assert is_maasp_missing(False, None, old, NOW, 3600)
    assert is_maasp_missing(True, None, old, NOW, 3600)  # computed: no critical points
    assert not is_maasp_missing(True, 120.0, old, NOW, 3600)
