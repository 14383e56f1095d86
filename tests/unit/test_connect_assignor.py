"""The leader's incremental cooperative assignor (KIP-415), on the scenarios of Kafka's
IncrementalCooperativeAssignorTest: each rebalance feeds the assignor what every member runs and
applies its answer, as the members would (stop the revoked, start the new)."""

from __future__ import annotations

import pytest

from tomyum.connect.assignor import ClusterAssignment, IncrementalCooperativeAssignor, Task

pytestmark = pytest.mark.timeout(10)

DELAY = 300_000  # Kafka's scheduled.rebalance.max.delay.ms default


class Group:
    """Members and their running work; ``rebalance()`` is one generation led by the assignor."""

    def __init__(self, max_delay_ms: int = DELAY) -> None:
        self.assignor = IncrementalCooperativeAssignor(max_delay_ms)
        self.now = 1_000_000
        self.generation = 0
        self.configured = {"connector1": 4, "connector2": 4}
        self.members: dict[str, tuple[list[str], list[Task]]] = {"worker1": ([], [])}
        self.last: ClusterAssignment | None = None

    def rebalance(self) -> ClusterAssignment:
        self.generation += 1
        result = self.assignor.perform_task_assignment(
            configured=self.configured, last_completed_generation_id=self.generation - 1,
            generation_id=self.generation, members=self.members, now_ms=self.now)
        every = [t for ts in result.all_tasks.values() for t in ts]
        assert len(every) == len(set(every)), "a task assigned twice"
        for m in self.members:
            running_c, running_t = self.members[m]
            # a member is told only what is new: nothing it already runs
            assert not set(result.assigned_tasks.get(m, ())) & set(running_t)
            assert set(result.revoked_tasks.get(m, ())) <= set(running_t)
            self.members[m] = (list(result.all_connectors[m]), list(result.all_tasks[m]))
        self.last = result
        return result

    def connectors(self) -> list[int]:
        return sorted(len(c) for c, _ in self.members.values())

    def tasks(self) -> list[int]:
        return sorted(len(t) for _, t in self.members.values())

    def nothing_moved(self) -> bool:
        r = self.last
        assert r is not None
        return not any([*r.assigned_connectors.values(), *r.assigned_tasks.values(),
                        *r.revoked_connectors.values(), *r.revoked_tasks.values()])

    def complete(self) -> bool:
        running = sorted(t for _, ts in self.members.values() for t in ts)
        return running == sorted((c, i) for c, n in self.configured.items() for i in range(n))


def test_a_joining_worker_gets_its_share_by_revocation_then_assignment() -> None:
    g = Group()
    g.rebalance()
    assert (g.connectors(), g.tasks(), g.assignor.delay) == ([2], [8], 0)
    g.members["worker2"] = ([], [])
    first = g.rebalance()
    assert (g.connectors(), g.tasks(), g.assignor.delay) == ([0, 1], [0, 4], 0)  # revoked, not yet given
    assert len(first.revoked_tasks["worker1"]) == 4 and not first.assigned_tasks["worker2"]
    kept = set(g.members["worker1"][1])
    g.rebalance()
    assert (g.connectors(), g.tasks()) == ([1, 1], [4, 4]) and g.complete()
    assert set(g.members["worker1"][1]) == kept  # what worker1 kept never moved
    g.rebalance()
    assert g.nothing_moved()


def test_a_departed_worker_s_work_is_held_for_the_delay_then_reassigned() -> None:
    g = Group()
    g.members["worker2"] = ([], [])
    g.rebalance()
    assert (g.connectors(), g.tasks()) == ([1, 1], [4, 4])
    del g.members["worker2"]
    g.rebalance()
    assert g.assignor.delay == DELAY and g.nothing_moved() and g.tasks() == [4]
    g.now += DELAY // 2
    g.rebalance()
    assert g.assignor.delay == DELAY // 2 and g.nothing_moved()
    g.now += DELAY // 2 + 1
    g.rebalance()
    assert g.assignor.delay == 0 and (g.connectors(), g.tasks()) == ([2], [8]) and g.complete()


def test_a_worker_that_comes_back_within_the_delay_gets_its_work_back() -> None:
    g = Group()
    g.members["worker2"] = ([], [])
    g.rebalance()
    lost = list(g.members["worker2"][1])
    del g.members["worker2"]
    g.rebalance()
    g.now += DELAY // 2
    g.members["worker2"] = ([], [])  # back, empty (restarted)
    g.rebalance()
    assert g.assignor.delay == DELAY // 2 and g.nothing_moved()
    g.now += DELAY // 2
    result = g.rebalance()
    assert g.assignor.delay == 0 and not any(result.revoked_tasks.values())
    assert sorted(g.members["worker2"][1]) == sorted(lost) and g.complete()


def test_a_delay_of_zero_reassigns_lost_work_at_once() -> None:
    g = Group(max_delay_ms=0)
    g.members["worker2"] = ([], [])
    g.rebalance()
    del g.members["worker2"]
    g.rebalance()
    assert g.assignor.delay == 0 and g.tasks() == [8] and g.complete()


def test_successive_revoking_rebalances_back_off() -> None:
    g = Group()
    g.configured["connector3"] = 4
    g.rebalance()
    g.members["worker2"] = ([], [])
    g.rebalance()
    assert (g.connectors(), g.tasks()) == ([0, 2], [0, 6])
    g.members["worker3"] = ([], [])
    g.rebalance()  # a second revoking round in a row: revocations wait for a backoff delay
    assert g.assignor.delay > 0
    assert (g.connectors(), g.tasks()) == ([0, 1, 2], [3, 3, 6])


def test_deleted_and_duplicated_work_is_revoked() -> None:
    g = Group()
    g.members["worker2"] = ([], [])
    g.rebalance()
    g.rebalance()
    del g.configured["connector2"]
    g.members["worker2"][1].append(g.members["worker1"][1][0])  # also running worker1's first task
    result = g.rebalance()
    revoked = {t for ts in result.revoked_tasks.values() for t in ts}
    assert {("connector2", i) for i in range(4)} <= revoked
    assert not any(c == "connector2" for cs in g.members.values() for c in cs[0])
    g.rebalance()
    g.rebalance()
    assert g.complete() and sorted(g.tasks()) == [2, 2]
