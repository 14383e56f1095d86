"""The leader's incremental cooperative assignor (KIP-415; Kafka's IncrementalCooperativeAssignor).

Pure: no I/O and no clock of its own (the caller passes ``now_ms``). One instance lives in each
worker and keeps, between the rebalances it leads, what it last handed out; it is used by one
thread only.

What a rebalance does, in Kafka's terms, given what every member says it runs (its assignment
from the last generation, sent in its JoinGroup metadata):

- what keeps running stays where it is; a member is told only what to *start* (newly assigned)
  and what to *stop* (revoked), never its whole assignment again;
- deleted connectors and tasks, and any running on two members, are revoked;
- a worker that joins gets a balanced share in two rounds: the first revokes the surplus from the
  busiest workers (nothing is assigned to anyone twice at once), the members whose work was
  revoked rejoin at once, and the second round assigns the freed work to the least loaded;
- work that was assigned but is no longer reported by anyone ("lost": its worker left the group)
  is held for ``scheduled.rebalance.max.delay.ms``: every member gets that delay in its
  assignment and rejoins when it passes; then the work goes to workers that joined empty in the
  meantime (the departed worker coming back, typically) or, if none, is spread like new work.
  With a delay of 0 it is reassigned at once;
- back-to-back revoking rebalances are spaced by an exponential backoff (1 ms × 40ⁿ, at most the
  max delay), as Kafka does, so that workers bouncing in and out do not make the cluster thrash.

Ties are broken by member id (Kafka's WorkerLoad comparators); members are taken in member-id order
where Kafka iterates a hash map, so every leader computes the same result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

Task = tuple[str, int]
E = TypeVar("E", str, Task)


@dataclasses.dataclass(slots=True)
class ConnectorsAndTasks:
    """A set of connectors and tasks (Kafka's ConnectorsAndTasks)."""

    connectors: set[str] = dataclasses.field(default_factory=set)
    tasks: set[Task] = dataclasses.field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.connectors or self.tasks)

    def minus(self, *others: ConnectorsAndTasks) -> ConnectorsAndTasks:
        c, t = set(self.connectors), set(self.tasks)
        for o in others:
            c -= o.connectors
            t -= o.tasks
        return ConnectorsAndTasks(c, t)


@dataclasses.dataclass(slots=True)
class WorkerLoad:
    """One member's connectors and tasks, in the order it reported them (Kafka's WorkerLoad)."""

    worker: str
    connectors: list[str]
    tasks: list[Task]

    def is_empty(self) -> bool:
        return not self.connectors and not self.tasks


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClusterAssignment:
    """The result of one rebalance, per member id: what to start, what to stop, and everything it
    runs once it has done both."""

    assigned_connectors: dict[str, list[str]]
    assigned_tasks: dict[str, list[Task]]
    revoked_connectors: dict[str, list[str]]
    revoked_tasks: dict[str, list[Task]]
    all_connectors: dict[str, list[str]]
    all_tasks: dict[str, list[Task]]


class IncrementalCooperativeAssignor:
    """Kafka's incremental cooperative assignor. ``delay`` is the scheduled rebalance delay (ms)
    that the latest assignment carries to every member."""

    def __init__(self, max_delay_ms: int) -> None:
        self.max_delay_ms = max_delay_ms
        self.delay = 0
        self.scheduled_rebalance = 0
        self._previous = ConnectorsAndTasks()
        self._previous_revocation = ConnectorsAndTasks()
        self._previous_generation_id = -1
        self._previous_members: set[str] = set()
        self._revoked_in_previous = False
        self._successive_revoking_rebalances = 0
        self._candidates: list[str] = []

    def perform_task_assignment(self, *, configured: Mapping[str, int], last_completed_generation_id: int,
                                generation_id: int, members: Mapping[str, tuple[Sequence[str], Sequence[Task]]],
                                now_ms: int) -> ClusterAssignment:
        """Assign ``configured`` (connector name → task count) over ``members`` (member id → the
        connectors and tasks it runs). ``last_completed_generation_id`` is the generation this
        leader last completed: if it is not the one this assignor last assigned, what it
        remembers is stale and forgotten, as in Kafka."""
        if self._previous_generation_id != last_completed_generation_id:
            self._previous = ConnectorsAndTasks()
        wanted = ConnectorsAndTasks(set(configured),
                                    {(c, i) for c, n in configured.items() for i in range(n)})
        ids = sorted(members)
        active = ConnectorsAndTasks({c for m in ids for c in members[m][0]},
                                    {t for m in ids for t in members[m][1]})
        revocation = self._previous_revocation
        if revocation:
            if revocation.connectors & active.connectors or revocation.tasks & active.tasks:
                self._previous = active  # the last revocation did not take effect: start again from what runs
            self._previous_revocation = ConnectorsAndTasks()

        deleted = self._previous.minus(wanted)
        duplicated = _duplicated(members)
        lost = self._previous.minus(active, deleted)
        created = wanted.minus(self._previous, active)

        current = {m: WorkerLoad(m, [c for c in members[m][0] if c not in deleted.connectors],
                                 [t for t in members[m][1] if t not in deleted.tasks]) for m in ids}
        nxt = [WorkerLoad(m, list(members[m][0]), list(members[m][1])) for m in ids]
        to_revoke: dict[str, ConnectorsAndTasks] = {}
        for drop in (deleted, duplicated):
            per_member = {m: ConnectorsAndTasks(set(members[m][0]) & drop.connectors, set(members[m][1]) & drop.tasks)
                          for m in ids}
            _add_all(to_revoke, per_member)
            _remove_all(nxt, per_member)

        reassign = self._handle_lost(lost, nxt, now_ms)

        if self.delay == 0:
            balancing = _load_balancing_revocations(wanted, nxt)
            if self._revoked_in_previous and balancing:
                self._successive_revoking_rebalances += 1
                self.delay = self._backoff(self._successive_revoking_rebalances)
                if self.delay:
                    self.scheduled_rebalance = now_ms + self.delay
                else:
                    _add_all(to_revoke, balancing)
                    _remove_all(nxt, balancing)
            elif balancing:
                _add_all(to_revoke, balancing)
                _remove_all(nxt, balancing)
                self._revoked_in_previous = True
            elif self._revoked_in_previous:
                self._revoked_in_previous = False  # converged: reset the backoff
                self._successive_revoking_rebalances = 0
        else:
            self._revoked_in_previous = False  # a delayed rebalance is pending: no revocations now

        _assign(nxt, sorted(created.connectors | reassign.connectors), lambda w: w.connectors)
        _assign(nxt, sorted(created.tasks | reassign.tasks), lambda w: w.tasks)

        revoked_c = {m: sorted(r.connectors) for m, r in to_revoke.items()}
        revoked_t = {m: sorted(r.tasks) for m, r in to_revoke.items()}
        previous = ConnectorsAndTasks({c for w in nxt for c in w.connectors}, {t for w in nxt for t in w.tasks})
        for r in to_revoke.values():
            previous.connectors -= r.connectors
            previous.tasks -= r.tasks
            self._previous_revocation.connectors |= r.connectors
            self._previous_revocation.tasks |= r.tasks
        previous.connectors |= lost.connectors
        previous.tasks |= lost.tasks
        self._previous = previous
        self._previous_generation_id = generation_id
        self._previous_members = set(ids)

        return ClusterAssignment(
            assigned_connectors={w.worker: _minus(w.connectors, current[w.worker].connectors) for w in nxt},
            assigned_tasks={w.worker: _minus(w.tasks, current[w.worker].tasks) for w in nxt},
            revoked_connectors=revoked_c, revoked_tasks=revoked_t,
            all_connectors={w.worker: _minus(w.connectors, revoked_c.get(w.worker, ())) for w in nxt},
            all_tasks={w.worker: _minus(w.tasks, revoked_t.get(w.worker, ())) for w in nxt})

    def _handle_lost(self, lost: ConnectorsAndTasks, nxt: list[WorkerLoad], now_ms: int) -> ConnectorsAndTasks:
        """Kafka's handleLostAssignments: what to reassign now as new work; lost work may also
        be given straight to candidate workers (workers that joined empty while it was held)."""
        if not lost and not self._revoked_in_previous:
            self._reset_delay()
            return ConnectorsAndTasks()
        present = {w.worker for w in nxt}
        if self.scheduled_rebalance <= 0 and present >= self._previous_members:
            return lost  # nobody left: a member missed its assignment; hand the work out again
        if self.max_delay_ms == 0:
            return lost
        if 0 < self.scheduled_rebalance <= now_ms:
            by_id = {w.worker: w for w in nxt}
            candidates = [by_id[c] for c in self._candidates if c in by_id]
            reassign = ConnectorsAndTasks()
            if candidates:
                for i, c in enumerate(sorted(lost.connectors)):
                    candidates[i % len(candidates)].connectors.append(c)
                for i, t in enumerate(sorted(lost.tasks)):
                    candidates[i % len(candidates)].tasks.append(t)
            else:
                reassign = lost
            self._reset_delay()
            self._revoked_in_previous = False
            return reassign
        self._candidates += [w.worker for w in nxt if w.is_empty() and w.worker not in self._candidates]
        if now_ms < self.scheduled_rebalance:
            self.delay = min(self.scheduled_rebalance - now_ms, self.max_delay_ms)
        else:
            self.delay = self.max_delay_ms
        self.scheduled_rebalance = now_ms + self.delay
        return ConnectorsAndTasks()

    def _reset_delay(self) -> None:
        self._candidates = []
        self.scheduled_rebalance = 0
        self.delay = 0

    def _backoff(self, attempts: int) -> int:
        """Kafka's ExponentialBackoff(1 ms, ×40, max delay, no jitter) for successive revocations."""
        if self.max_delay_ms <= 1:
            return self.max_delay_ms
        exp_max = math.log(self.max_delay_ms) / math.log(40)
        return int(min(40 ** min(attempts, exp_max), self.max_delay_ms))


def _minus(items: list[E], gone: Iterable[E]) -> list[E]:
    drop = set(gone)
    return [x for x in items if x not in drop]


def _duplicated(members: Mapping[str, tuple[Sequence[str], Sequence[Task]]]) -> ConnectorsAndTasks:
    seen_c: dict[str, int] = {}
    seen_t: dict[Task, int] = {}
    for connectors, tasks in members.values():
        for c in connectors:
            seen_c[c] = seen_c.get(c, 0) + 1
        for t in tasks:
            seen_t[t] = seen_t.get(t, 0) + 1
    return ConnectorsAndTasks({c for c, n in seen_c.items() if n > 1}, {t for t, n in seen_t.items() if n > 1})


def _add_all(base: dict[str, ConnectorsAndTasks], more: Mapping[str, ConnectorsAndTasks]) -> None:
    for m, r in more.items():
        if r:
            into = base.setdefault(m, ConnectorsAndTasks())
            into.connectors |= r.connectors
            into.tasks |= r.tasks


def _remove_all(loads: list[WorkerLoad], drop: Mapping[str, ConnectorsAndTasks]) -> None:
    for w in loads:
        r = drop.get(w.worker)
        if r:
            w.connectors[:] = [c for c in w.connectors if c not in r.connectors]
            w.tasks[:] = [t for t in w.tasks if t not in r.tasks]


def _load_balancing_revocations(wanted: ConnectorsAndTasks, loads: list[WorkerLoad]) -> dict[str, ConnectorsAndTasks]:
    """What to take from each worker so that none runs more than a balanced share."""
    if all(w.is_empty() for w in loads) or not wanted:
        return {}
    out: dict[str, ConnectorsAndTasks] = {}
    for member, revoked in _surplus(len(wanted.connectors), loads, lambda w: w.connectors).items():
        out.setdefault(member, ConnectorsAndTasks()).connectors |= set(revoked)
    for member, revoked_t in _surplus(len(wanted.tasks), loads, lambda w: w.tasks).items():
        out.setdefault(member, ConnectorsAndTasks()).tasks |= set(revoked_t)
    return out


def _surplus(total: int, loads: list[WorkerLoad], allocation: Callable[[WorkerLoad], list[E]]) -> dict[str, list[E]]:
    """Per worker, the first items beyond its share: ``total // n``, one more for ``total % n``
    of them (Kafka's loadBalancingRevocations)."""
    share, extra = divmod(total, len(loads))
    sizes = [len(allocation(w)) for w in loads]
    if sizes.count(share + 1) == extra and sizes.count(share) + sizes.count(share + 1) == len(loads):
        return {}
    out: dict[str, list[E]] = {}
    extras = 0
    for w, size in zip(loads, sizes, strict=True):
        if size <= share:
            continue
        limit = share
        if extras < extra:
            extras += 1
            if size == share + 1:
                continue
            limit = share + 1
        out[w.worker] = allocation(w)[:size - limit]
    return out


def _assign(loads: list[WorkerLoad], items: list[E], allocation: Callable[[WorkerLoad], list[E]]) -> None:
    """Kafka's assignConnectors/assignTasks: round-robin over the least loaded workers, widening
    the round as the least loaded catch up with the next."""
    if not items or not loads:
        return
    loads.sort(key=lambda w: (len(allocation(w)), w.worker))
    first = loads[0]
    pending = iter(items)
    remaining = len(items)
    while remaining:
        floor = len(allocation(first))
        up_to = next((i for i, w in enumerate(loads) if len(allocation(w)) > floor), len(loads))
        for w in loads[:up_to]:
            allocation(w).append(next(pending))
            remaining -= 1
            if not remaining:
                break
