"""The helpers that turn the store's hot plain-SQL statements into driver statements."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cloudsms.storage.plain_sql import chunk_sizes, driver_sql, in_list


@given(total=st.integers(0, 5000), most=st.integers(1, 4000))
def test_chunks_cover_every_row_in_few_shapes(total: int, most: int) -> None:
    sizes = chunk_sizes(total, most)
    assert sum(sizes) == total
    assert all(size <= min(512, most) for size in sizes)
    assert all(size & (size - 1) == 0 for size in sizes)  # powers of two: few statement shapes
    assert sizes == sorted(sizes, reverse=True)


def test_in_list_pads_to_a_power_of_two_with_the_last_value() -> None:
    assert in_list(["a"]) == ("?", ("a",))
    assert in_list(["a", "b", "c"]) == ("?, ?, ?, ?", ("a", "b", "c", "c"))
    assert in_list([]) == ("NULL", ())  # IN (NULL): nothing


def test_driver_sql_per_dialect() -> None:
    sql = "UPDATE t SET n = (n + ?) % 7 WHERE id = ?"
    assert driver_sql(sql, "sqlite") == sql
    assert driver_sql(sql, "postgresql") == "UPDATE t SET n = (n + %s) %% 7 WHERE id = %s"
