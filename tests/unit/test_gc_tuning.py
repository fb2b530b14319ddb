import gc

import pytest

from shared.infrastructure.gc_tuning import collection_paused, freeze_startup_heap


def test_freeze_startup_heap_freezes_what_is_alive() -> None:
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_no_collection_runs_inside_the_pause_and_the_collector_is_back_after_it() -> None:
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with collection_paused():
            assert not gc.isenabled()
            # Far more container allocations than the young threshold.
            garbage = [[i] for i in range(20 * gc.get_threshold()[0])]
            del garbage
            assert collections == []
        assert gc.isenabled()
        cycle: list = []
        cycle.append(cycle)
        del cycle
        _ = [[i] for i in range(2 * gc.get_threshold()[0])]
        assert collections, "the collector did not run after the pause"
    finally:
        gc.callbacks.remove(count)


def test_the_collector_comes_back_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_pause_inside_a_pause_leaves_the_collector_off_until_the_outer_one_ends() -> None:
    with collection_paused():
        with collection_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
