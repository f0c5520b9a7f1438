import pytest

from crimecast.domain.parallel import WorkerError, map_processes


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


def test_results_come_back_in_order_with_progress() -> None:
    seen: list[tuple[int, int]] = []
    assert map_processes(_square, list(range(10)), workers=2, progress=lambda d, t: seen.append((d, t))) == [
        x * x for x in range(10)
    ]
    assert seen[-1] == (10, 10) and len(seen) == 10


def test_a_failing_item_raises_with_its_message() -> None:
    with pytest.raises(WorkerError, match="three is bad"):
        map_processes(_fail_on_three, list(range(6)), workers=2)
