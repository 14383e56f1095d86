"""Independent reference checks: seeded random inputs run through the DSL in the test
driver and through small reference models written here from Kafka Streams' documented
rules (KStreamSessionWindowAggregate and its session store; KIP-258's result timestamps in
KStreamAggregate, KStreamWindowAggregate, KStreamSlidingWindowAggregate, KTableAggregate and
KTableKTableJoin). The models share no code with tomyum.streams: they keep plain lists and
dicts of the records seen and recompute what each output must be.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tomyum.streams import (
    Materialized,
    Serdes,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    StreamsConfig,
    TimeWindows,
    TopologyTestDriver,
)

S, L = Serdes.string(), Serdes.long()
CONFIG = StreamsConfig(application_id="reference", default_key_serde=S, default_value_serde=L)
SEEDS = range(25)

Input = tuple[str | None, int | None, int]  # key, value, timestamp


def random_stream(rng: random.Random, *, n: int, spread: int, lateness: int, null_share: float = 0.05) -> list[Input]:
    """Records of a few keys on a clock that moves forward by up to ``spread`` ms a record;
    a record is up to ``lateness`` ms behind the clock (out of order, and late when that is
    more than the grace period); a few have a ``None`` key or value."""
    clock, records = 0, []
    for _ in range(n):
        clock += rng.randint(0, spread)
        ts = max(0, clock - rng.randint(0, lateness)) if rng.random() < 0.4 else clock
        key = None if rng.random() < null_share else rng.choice("abc")
        value = None if rng.random() < null_share else rng.randint(1, 9)
        records.append((key, value, ts))
    return records


# -- sessions ------------------------------------------------------------------------------------


@dataclass
class SessionModel:
    """Kafka's session aggregation, as its documentation and KStreamSessionWindowAggregate
    state it: records at most ``gap`` apart share a session; a session is still found (and
    merged into) while its end is after stream time (before the record) minus gap and grace;
    a record whose merged session ends before stream time (with the record) minus gap and
    grace is dropped."""

    gap: int
    grace: int
    stream_time: int = -1
    dropped: int = 0
    sessions: dict[str, dict[tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
    """key -> (start, end) -> (count, sum)"""
    out: list[tuple[str, int, int, Any, int]] = field(default_factory=list)
    """(key, start, end, (count, sum) or None, timestamp)"""

    def kept(self, end: int, time: int) -> bool:
        return end > time - self.gap - self.grace

    def add(self, key: str | None, value: int | None, ts: int) -> None:
        if key is None or value is None:
            self.dropped += 1
            return
        mine = self.sessions.setdefault(key, {})
        before = self.stream_time
        found = sorted(((e, s) for (s, e) in mine if self.kept(e, before) and e >= ts - self.gap
                        and s <= ts + self.gap))
        self.stream_time = max(self.stream_time, ts)
        start = min([ts, *(s for e, s in found)])
        end = max([ts, *(e for e, s in found)])
        if end < self.stream_time - self.gap - self.grace:
            self.dropped += 1
            return
        count, total = 1, value
        for e, s in found:
            c, t = mine[(s, e)]
            count, total = count + c, total + t
        if (start, end) != (ts, ts):
            for e, s in found:
                self.out.append((key, s, e, None, e))
                del mine[(s, e)]
        if end > max(before, end) - self.gap - self.grace:  # the store keeps only live sessions
            mine[(start, end)] = (count, total)
        self.out.append((key, start, end, (count, total), end))

    def live(self) -> list[tuple[str, int, int, tuple[int, int]]]:
        return sorted((k, s, e, v) for k, mine in self.sessions.items() for (s, e), v in mine.items()
                      if self.kept(e, self.stream_time))


def session_outputs(records: list[Input], gap: int, grace: int) -> tuple[list[Any], list[Any], list[Any], int]:
    b = StreamsBuilder()
    grouped = b.stream("in", key_serde=S, value_serde=L).group_by_key()
    windowed = grouped.windowed_by(SessionWindows.of_inactivity_gap_and_grace(gap, grace))
    sk = Serdes.session_windowed(S)
    windowed.count(Materialized(store_name="counts")).to_stream().to("counts", key_serde=sk, value_serde=L)
    windowed.reduce(lambda a, v: a + v, Materialized(store_name="sums")).to_stream().to(
        "sums", key_serde=sk, value_serde=L)
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        for key, value, ts in records:
            driver.pipe_input("in", key, value, timestamp=ts)
        counts = [(r.key.key, r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp)
                  for r in driver.read_output("counts")]
        sums = [(r.key.key, r.key.window.start_ms, r.key.window.end_ms, r.value, r.timestamp)
                for r in driver.read_output("sums")]
        store = sorted((w.key, w.window.start_ms, w.window.end_ms, v) for w, v in driver.get_session_store("counts").all())
        # each null record is dropped by both aggregations, each late one too
        return counts, sums, store, driver.metrics().get("dropped-records-total", 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_session_windows_match_the_reference_with_grace_out_of_order_and_late_records(seed: int) -> None:
    rng = random.Random(seed)
    gap, grace = rng.randint(1, 20), rng.choice([0, 0, rng.randint(1, 30)])
    records = random_stream(rng, n=200, spread=gap + gap // 2, lateness=3 * gap + grace)
    model = SessionModel(gap, grace)
    for record in records:
        model.add(*record)
    counts, sums, store, dropped = session_outputs(records, gap, grace)
    assert counts == [(k, s, e, None if v is None else v[0], ts) for k, s, e, v, ts in model.out]
    assert sums == [(k, s, e, None if v is None else v[1], ts) for k, s, e, v, ts in model.out]
    assert store == [(k, s, e, v[0]) for k, s, e, v in model.live()]
    assert dropped == 2 * model.dropped
    assert model.dropped > 0 and any(v is None for *_, v, _ in model.out)  # the inputs did exercise both


def test_records_exactly_the_gap_apart_share_a_session() -> None:
    counts, _, store, dropped = session_outputs([("k", 1, 0), ("k", 1, 10)], 10, 0)
    assert counts == [("k", 0, 0, 1, 0), ("k", 0, 0, None, 0), ("k", 0, 10, 2, 10)]
    assert store == [("k", 0, 10, 2)] and dropped == 0
    counts, _, _, _ = session_outputs([("k", 1, 0), ("k", 1, 11)], 10, 0)
    assert counts == [("k", 0, 0, 1, 0), ("k", 11, 11, 1, 11)]


# -- result timestamps of aggregations -------------------------------------------------------------


def per_record(driver: TopologyTestDriver, records: list[Input], topics: dict[str, Callable[[Any], tuple[Any, ...]]]
               ) -> dict[str, list[list[tuple[Any, ...]]]]:
    """Pipe ``records`` one by one; for each topic, what each record produced (flattened by
    the topic's function)."""
    out: dict[str, list[list[tuple[Any, ...]]]] = {topic: [] for topic in topics}
    for key, value, ts in records:
        driver.pipe_input("in", key, value, timestamp=ts)
        for topic, flatten in topics.items():
            out[topic].append([flatten(r) for r in driver.read_output(topic)])
    return out


def plain(r: Any) -> tuple[Any, ...]:
    return (r.key, r.value, r.timestamp)


def windowed(r: Any) -> tuple[Any, ...]:
    return (r.key.key, r.key.window.start_ms, r.value, r.timestamp)


def reference_stream_aggregations(records: list[Input]) -> dict[str, list[list[tuple[Any, ...]]]]:
    """count/reduce/aggregate: each result carries the largest timestamp of its key's records."""
    seen: dict[str, list[tuple[int, int]]] = {}
    out: dict[str, list[list[tuple[Any, ...]]]] = {"count": [], "reduce": [], "aggregate": []}
    for key, value, ts in records:
        if key is None or value is None:
            for results in out.values():
                results.append([])
            continue
        seen.setdefault(key, []).append((value, ts))
        values, stamp = [v for v, _ in seen[key]], max(t for _, t in seen[key])
        out["count"].append([(key, len(values), stamp)])
        out["reduce"].append([(key, sum(values), stamp)])
        out["aggregate"].append([(key, 100 + sum(values), stamp)])
    return out


def reference_hopping(records: list[Input], size: int, advance: int,
                      grace: int) -> tuple[list[list[tuple[Any, ...]]], list[list[tuple[Any, ...]]], int]:
    """Each window's result carries the largest timestamp of its records; a record is dropped
    once per window of it that has closed (``end <= stream time - grace``), and still counts
    in the others."""
    stream_time, dropped = -1, 0
    windows: dict[tuple[str, int], list[tuple[int, int]]] = {}
    counts: list[list[tuple[Any, ...]]] = []
    sums: list[list[tuple[Any, ...]]] = []
    for key, value, ts in records:
        counts.append([])
        sums.append([])
        if key is None or value is None:
            dropped += 1
            continue
        stream_time = max(stream_time, ts)
        for start in range(ts - ts % advance, -1, -advance):  # every window containing ts
            if start + size <= ts:
                break
            if start + size <= stream_time - grace:
                dropped += 1
                continue
            members = windows.setdefault((key, start), [])
            members.append((value, ts))
            stamp = max(t for _, t in members)
            counts[-1].append((key, start, len(members), stamp))
            sums[-1].append((key, start, sum(v for v, _ in members), stamp))
    return counts, sums, dropped


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_aggregation_results_carry_the_largest_timestamp_of_their_records(seed: int) -> None:
    rng = random.Random(1000 + seed)
    size = rng.randint(5, 40)
    advance, grace = rng.randint(1, size), rng.randint(0, 40)
    records = random_stream(rng, n=150, spread=10, lateness=60)
    b = StreamsBuilder()
    grouped = b.stream("in", key_serde=S, value_serde=L).group_by_key()
    grouped.count().to_stream().to("count", value_serde=L)
    grouped.reduce(lambda a, v: a + v).to_stream().to("reduce", value_serde=L)
    grouped.aggregate(lambda: 100, lambda k, v, a: a + v, Materialized(value_serde=L)).to_stream().to(
        "aggregate", value_serde=L)
    tk = Serdes.time_windowed(S, size)
    hopping = grouped.windowed_by(TimeWindows.of_size_and_grace(size, grace).advance_by(advance))
    hopping.count().to_stream().to("hopping-count", key_serde=tk, value_serde=L)
    hopping.aggregate(lambda: 0, lambda k, v, a: a + v, Materialized(value_serde=L)).to_stream().to(
        "hopping-sum", key_serde=tk, value_serde=L)
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        got = per_record(driver, records, {"count": plain, "reduce": plain, "aggregate": plain,
                                           "hopping-count": windowed, "hopping-sum": windowed})
    want = reference_stream_aggregations(records)
    for topic in ("count", "reduce", "aggregate"):
        assert got[topic] == want[topic], topic
    counts, sums, _ = reference_hopping(records, size, advance, grace)
    # within one record, its windows come oldest first (Kafka's windowsFor order)
    assert got["hopping-count"] == [sorted(c, key=lambda w: w[1]) for c in counts]
    assert got["hopping-sum"] == [sorted(c, key=lambda w: w[1]) for c in sums]
    assert any(len(c) > 1 for c in counts) or advance == size


@pytest.mark.parametrize("seed", SEEDS[:10])
def test_a_hopping_window_record_is_dropped_once_per_closed_window(seed: int) -> None:
    rng = random.Random(3000 + seed)
    size = rng.randint(10, 40)
    advance, grace = rng.randint(1, size // 2), rng.randint(0, 10)
    records = random_stream(rng, n=150, spread=10, lateness=80)
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=L).group_by_key()
        .windowed_by(TimeWindows.of_size_and_grace(size, grace).advance_by(advance)).count())
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        for key, value, ts in records:
            driver.pipe_input("in", key, value, timestamp=ts)
        dropped = driver.metrics().get("dropped-records-total", 0)
    _, _, want = reference_hopping(records, size, advance, grace)
    assert dropped == want


@pytest.mark.parametrize("seed", SEEDS)
def test_sliding_window_results_carry_the_largest_timestamp_of_their_records(seed: int) -> None:
    """Out of order, within the grace period: each update of a window ``[s, s + d]`` is the
    count of the key's records so far in it, stamped with their largest timestamp."""
    rng = random.Random(2000 + seed)
    difference = rng.randint(1, 30)
    records = random_stream(rng, n=120, spread=10, lateness=40, null_share=0.0)
    b = StreamsBuilder()
    (b.stream("in", key_serde=S, value_serde=L).group_by_key()
        .windowed_by(SlidingWindows.of_time_difference_and_grace(difference, 1_000)).count()  # no record is late
        .to_stream().to("out", key_serde=Serdes.time_windowed(S, difference), value_serde=L))
    seen: dict[str, list[int]] = {}
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        for key, value, ts in records:
            assert key is not None
            driver.pipe_input("in", key, value, timestamp=ts)
            seen.setdefault(key, []).append(ts)
            updates = driver.read_output("out")
            assert updates
            for r in updates:
                start = r.key.window.start_ms
                members = [t for t in seen[key] if start <= t <= start + difference]
                assert r.key.key == key and (r.value, r.timestamp) == (len(members), max(members))


# -- result timestamps of re-grouped table aggregations and table-table joins ------------------------


def random_changes(rng: random.Random, topics: list[str], n: int) -> list[tuple[str, str | None, int | None, int]]:
    """Changes of tables: upserts, deletes (also of keys not in the table), a few null keys,
    timestamps out of order."""
    changes = []
    for _ in range(n):
        key = None if rng.random() < 0.03 else rng.choice("abcd")
        value = None if rng.random() < 0.3 else rng.randint(1, 9)
        changes.append((rng.choice(topics), key, value, rng.randint(0, 200)))
    return changes


@pytest.mark.parametrize("seed", SEEDS)
def test_regrouped_table_aggregations_carry_the_largest_timestamp(seed: int) -> None:
    """KTableAggregate: an update of a group carries the larger of the change's timestamp and
    the group's stored one; a change that stays in its group is one update."""
    rng = random.Random(4000 + seed)
    changes = random_changes(rng, ["in"], 150)
    b = StreamsBuilder()
    grouped = b.table("in", key_serde=S, value_serde=L).group_by(
        lambda k, v: (f"g{v % 3}", v), key_serde=S, value_serde=L)
    grouped.count().to_stream().to("count", value_serde=L)
    grouped.reduce(lambda a, v: a + v, lambda a, v: a - v).to_stream().to("reduce", value_serde=L)
    grouped.aggregate(lambda: 100, lambda k, v, a: a + v, lambda k, v, a: a - v,
                      Materialized(value_serde=L)).to_stream().to("aggregate", value_serde=L)
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        got = per_record(driver, [(k, v, ts) for _, k, v, ts in changes],
                         {"count": plain, "reduce": plain, "aggregate": plain})

    table: dict[str, int] = {}
    groups: dict[str, tuple[int, int, int]] = {}  # group -> (count, sum, timestamp)
    want: dict[str, list[list[tuple[Any, ...]]]] = {"count": [], "reduce": [], "aggregate": []}
    for _, key, value, ts in changes:
        produced: list[tuple[str, int, int, int]] = []

        def update(group: str, subtract: int | None, add: int | None) -> None:
            count, total, stamp = groups.get(group, (0, 0, ts))
            stamp = max(stamp, ts)
            if subtract is not None:
                count, total = count - 1, total - subtract
            if add is not None:
                count, total = count + 1, total + add
            groups[group] = (count, total, stamp)
            produced.append((group, count, total, stamp))

        old = None if key is None else table.get(key)
        if key is not None and not (old is None and value is None):
            if value is None:
                del table[key]
            else:
                table[key] = value
            old_group = None if old is None else f"g{old % 3}"
            new_group = None if value is None else f"g{value % 3}"
            if old_group is not None and old_group == new_group:
                update(old_group, old, value)
            else:
                if old_group is not None:
                    update(old_group, old, None)
                if new_group is not None:
                    update(new_group, None, value)
        want["count"].append([(g, c, t) for g, c, _, t in produced])
        want["reduce"].append([(g, s, t) for g, _, s, t in produced])
        want["aggregate"].append([(g, 100 + s, t) for g, _, s, t in produced])
    assert got == want


@pytest.mark.parametrize("seed", SEEDS)
def test_table_table_joins_carry_the_later_timestamp_of_both_sides(seed: int) -> None:
    """KTableKTableJoin (inner, left, outer), deletes included: a result carries the larger of
    the changed side's timestamp and the other side's for the key, or the changed side's
    while the other side has none; the materialized results equal the joins of the tables."""
    rng = random.Random(5000 + seed)
    changes = random_changes(rng, ["left", "right"], 150)
    b = StreamsBuilder()
    left, right = b.table("left", key_serde=S, value_serde=L), b.table("right", key_serde=S, value_serde=L)

    def joiner(x: int | None, y: int | None) -> str:
        return f"{x}+{y}"

    left.join(right, joiner, materialized=Materialized(store_name="inner", value_serde=S),
              name="inner").to_stream().to("inner", value_serde=S)
    left.left_join(right, joiner, materialized=Materialized(store_name="left", value_serde=S)).to_stream().to(
        "left-join", value_serde=S)
    left.outer_join(right, joiner, materialized=Materialized(store_name="outer", value_serde=S)).to_stream().to(
        "outer", value_serde=S)
    topics = {"inner": "inner", "left": "left-join", "outer": "outer"}
    got: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in topics}
    with TopologyTestDriver(b.build(), CONFIG) as driver:
        for topic, key, value, ts in changes:
            driver.pipe_input(topic, key, value, timestamp=ts)
        for kind, out in topics.items():
            got[kind] = [plain(r) for r in driver.read_output(out)]
        stored = {kind: dict(driver.get_key_value_store(kind).all()) for kind in topics}

    tables: dict[str, dict[str, tuple[int, int]]] = {"left": {}, "right": {}}
    want: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in topics}

    def result(kind: str, x: int | None, y: int | None) -> str | None:
        holds = {"inner": x is not None and y is not None, "left": x is not None,
                 "outer": x is not None or y is not None}[kind]
        return joiner(x, y) if holds else None

    for topic, key, value, ts in changes:
        if key is None:
            continue
        mine, theirs = tables[topic], tables["right" if topic == "left" else "left"]
        old = mine.get(key)
        if old is None and value is None:
            continue
        if value is None:
            del mine[key]
        else:
            mine[key] = (value, ts)
        other = theirs.get(key)
        other_value = None if other is None else other[0]
        for kind in topics:
            def joined(v: int | None) -> str | None:
                return result(kind, v, other_value) if topic == "left" else result(kind, other_value, v)
            new, before = joined(value), joined(None if old is None else old[0])
            if new is None and before is None:
                continue
            want[kind].append((key, new, ts if other is None else max(ts, other[1])))
    assert got == want
    for kind in topics:
        expected = {}
        for key in "abcd":
            lv, rv = tables["left"].get(key), tables["right"].get(key)
            now = result(kind, None if lv is None else lv[0], None if rv is None else rv[0])
            if now is not None:
                expected[key] = now
        assert stored[kind] == expected, kind
