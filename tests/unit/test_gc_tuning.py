import gc

from shared.gc_tuning import freeze_startup_heap


def test_freeze_startup_heap_freezes_what_is_alive_and_sets_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        freeze_startup_heap(young_threshold=12_345)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert gc.get_freeze_count() == 0
