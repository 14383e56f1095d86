"""Incremental fetch sessions (KIP-227), kept as Kafka's FetchManager keeps them.

A consumer that fetches many partitions need not list them all in every Fetch. Its first
(full) fetch, with session epoch 0, creates a session holding each partition's fetch position;
the response carries the session's id. Each later (incremental) fetch names the session and
the next epoch, lists only the partitions added or changed (and those to forget), and is
answered with only the partitions that have something new: records, a moved high watermark or
log start offset, or an error. Epoch -1 closes a session (or asks for none); a full fetch that
names a session closes it and starts another.

What a client gets wrong is answered as Kafka answers it: an unknown session id is
FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH (a retried or duplicated
request), and the client starts over with a full fetch. Session id 0 (no session) is always a
correct answer, so the cache may decline: it holds ``max.incremental.fetch.session.cache.slots``
sessions (0 turns sessions off); a new one may take the place of one unused for two minutes, or
of the smallest one older than that (Kafka's eviction). tomyum also caps the partitions all
sessions hold together (:data:`MAX_CACHED_PARTITIONS`), so that made-up partition lists cannot
fill the broker's memory: past it, no session is made or grown, and the client fetches in full.

The cache is pure bookkeeping: :meth:`FetchSessionCache.context` turns a Fetch request into a
:class:`FetchContext` (what to read), and :meth:`FetchContext.respond` cuts the response and
makes the session (the fetch handler reads the logs in between).

From Fetch v13 (KIP-516) a client names topics by id, not by name, and a session made by such a
fetch keeps its partitions by id: an id the broker does not know (a deleted topic's, or one made
up) stays in the session and is answered UNKNOWN_TOPIC_ID each time, and a topic deleted and
created again under its name is a different topic. A session is made by ids or by names and
stays so: an incremental fetch of the other kind (v13+ in a session made before v13, or the
reverse) is FETCH_SESSION_TOPIC_ID_ERROR, as in Kafka.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tomyum.errors import ErrorCode
from tomyum.protocol.fetch_response import FetchPartition
from tomyum.protocol.request_decoders import FetchPartition as RequestPartition
from tomyum.protocol.request_decoders import FetchRequest

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
#: how long a session must go unused before any new one may take its place (Kafka's fixed value)
EVICTION_MS = 120_000
#: the most partitions all sessions may hold together (about 250 bytes each)
MAX_CACHED_PARTITIONS = 200_000

#: the first Fetch version that names topics by id (KIP-516)
TOPIC_IDS_VERSION = 13
#: how a Fetch names a topic: its name (v4-12), or its id (v13+; None for the null id)
TopicKey = str | uuid.UUID | None
#: (topic, partition) and, in the order read, what to read of it
Key = tuple[TopicKey, int]
Wanted = list[tuple[TopicKey, list[RequestPartition]]]


_NONE = object()


def topic_key(topic: Any, uses_topic_ids: bool) -> TopicKey:
    """How a request's topic (or forgotten topic) is named: by id or by name."""
    return topic.topic_id if uses_topic_ids else topic.topic  # type: ignore[no-any-return]


def next_epoch(epoch: int) -> int:
    """The epoch after ``epoch`` (Kafka's FetchMetadata.nextEpoch: wraps to 1, never to 0)."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == 2**31 - 1 else epoch + 1


@dataclass(slots=True)
class CachedPartition:
    """One partition of a session: where the client reads from and what it was last told."""

    #: the partition as the client's last request that named it asked for it
    request: RequestPartition
    #: the high watermark last answered (-1: never, or an error since, so it is answered again)
    high_watermark: int = -1
    #: the log start offset last answered
    local_log_start_offset: int = -1

    def answered(self, out: FetchPartition) -> bool:
        """Remember what ``out`` tells the client; True if it must be in the response (new
        records, a moved high watermark or log start offset, an error)."""
        must = bool(out.records)
        if self.high_watermark != out.high_watermark:
            self.high_watermark, must = out.high_watermark, True
        if self.local_log_start_offset != out.log_start_offset:
            self.local_log_start_offset, must = out.log_start_offset, True
        if out.error_code:
            self.high_watermark, must = -1, True
        return must


class FetchSession:
    __slots__ = ("created_ms", "epoch", "id", "last_used_ms", "partitions", "size", "uses_topic_ids")

    def __init__(self, session_id: int, partitions: dict[Key, CachedPartition], now_ms: int,
                 uses_topic_ids: bool = False) -> None:
        self.id = session_id
        #: keyed by topic id (made by a v13+ fetch), not by name
        self.uses_topic_ids = uses_topic_ids
        #: in the order they are read: one that returned records moves to the end (fairness
        #: when max_bytes cuts a response short)
        self.partitions = partitions
        #: the epoch the client's next request must carry
        self.epoch = next_epoch(INITIAL_EPOCH)
        self.created_ms = self.last_used_ms = now_ms
        #: partitions counted in the cache's total
        self.size = len(partitions)

    def wanted(self) -> Wanted:
        """The partitions to read, topics grouped where they follow each other (as Kafka does)."""
        out: Wanted = []
        last: object = _NONE  # None is a key (the null id)
        for (topic, _), cached in self.partitions.items():
            if topic != last:
                out.append((topic, []))
                last = topic
            out[-1][1].append(cached.request)
        return out


class FetchContext:
    """What one Fetch reads (:attr:`wanted`) and, once read, how it is answered."""

    __slots__ = ("_cache", "_expected", "_request", "_session", "error", "uses_topic_ids", "wanted")

    def __init__(self, wanted: Wanted, *, error: ErrorCode = ErrorCode.none, cache: FetchSessionCache | None = None,
                 request: FetchRequest | None = None, session: FetchSession | None = None,
                 uses_topic_ids: bool = False) -> None:
        self.wanted = wanted
        #: :attr:`wanted` names topics by id (a v13+ fetch)
        self.uses_topic_ids = uses_topic_ids
        #: a session error: answered at once, with no partitions
        self.error = error
        self._cache = cache  # a full fetch that may make a session
        self._request = request
        self._session = session  # an incremental fetch
        self._expected = session.epoch if session is not None else 0

    def respond(self, topics: list[tuple[TopicKey, list[FetchPartition]]]) -> tuple[
            ErrorCode, int, list[tuple[TopicKey, list[FetchPartition]]]]:
        """(error, session id, the partitions to answer) for what was read."""
        if self.error:
            return self.error, INVALID_SESSION_ID, []
        session = self._session
        if session is not None:
            if session.epoch != self._expected:  # a later request of the session came first
                return ErrorCode.invalid_fetch_session_epoch, session.id, []
            return ErrorCode.none, session.id, _changed(session, topics)
        if self._cache is not None and self._request is not None:
            return ErrorCode.none, self._cache.create(self._request, topics, self.uses_topic_ids), topics
        return ErrorCode.none, INVALID_SESSION_ID, topics

    def throttled(self) -> tuple[ErrorCode, int]:
        """(error, session id) of the answer to a throttled fetch, which has no partitions and
        leaves the session as it was: a full fetch makes none (session id 0), an incremental
        one keeps its partitions' last answers (Kafka's ``getThrottledResponse``)."""
        if self.error:
            return self.error, INVALID_SESSION_ID
        session = self._session
        if session is None:
            return ErrorCode.none, INVALID_SESSION_ID
        if session.epoch != self._expected:
            return ErrorCode.invalid_fetch_session_epoch, session.id
        return ErrorCode.none, session.id


def _changed(session: FetchSession, topics: list[tuple[TopicKey, list[FetchPartition]]]) -> list[
        tuple[TopicKey, list[FetchPartition]]]:
    out: list[tuple[TopicKey, list[FetchPartition]]] = []
    for name, parts in topics:
        kept = []
        for p in parts:
            key = (name, p.partition_index)
            cached = session.partitions.get(key)
            if cached is None or cached.answered(p):
                kept.append(p)
                if cached is not None and p.records:
                    session.partitions[key] = session.partitions.pop(key)
        if kept:
            out.append((name, kept))
    return out


class FetchSessionCache:
    """The broker's fetch sessions, by id (see the module's docstring)."""

    def __init__(self, slots: int, now_ms: Callable[[], int], *, max_partitions: int = MAX_CACHED_PARTITIONS,
                 rng: random.Random | None = None) -> None:
        self.slots = slots
        self.max_partitions = max_partitions
        self._now_ms = now_ms
        self._rng = rng or random.Random()
        #: least recently used first
        self._sessions: dict[int, FetchSession] = {}
        #: partitions held by all sessions
        self.partitions = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def context(self, request: FetchRequest, version: int) -> FetchContext:
        """Open, update or close the session ``request`` (a Fetch of ``version``) names; what
        to read for it."""
        session_id, epoch = request.session_id, request.session_epoch
        ids = version >= TOPIC_IDS_VERSION
        wanted: Wanted
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self._remove(session_id)
            wanted = [(topic_key(t, ids), list(t.partitions)) for t in request.topics]
            if epoch == FINAL_EPOCH or not self.slots:
                return FetchContext(wanted, uses_topic_ids=ids)
            return FetchContext(wanted, cache=self, request=request, uses_topic_ids=ids)
        session = self._sessions.get(session_id)
        if session is None:
            return FetchContext([], error=ErrorCode.fetch_session_id_not_found)
        if epoch != session.epoch:
            return FetchContext([], error=ErrorCode.invalid_fetch_session_epoch)
        if session.uses_topic_ids != ids:
            return FetchContext([], error=ErrorCode.fetch_session_topic_id_error)
        parts = session.partitions
        for t in request.topics:
            key = topic_key(t, ids)
            for p in t.partitions:
                cached = parts.get((key, p.partition))
                if cached is None:
                    parts[(key, p.partition)] = CachedPartition(p)
                else:
                    cached.request = p
        for forgotten in request.forgotten_topics_data:
            key = topic_key(forgotten, ids)
            for index in forgotten.partitions:
                parts.pop((key, index), None)
        if not parts:  # nothing left: the session ends, and this fetch is answered without one
            self._remove(session_id)
            wanted = [(topic_key(t, ids), list(t.partitions)) for t in request.topics]
            return FetchContext(wanted, uses_topic_ids=ids)
        self.partitions += len(parts) - session.size
        session.size = len(parts)
        if self.partitions > self.max_partitions:
            self._remove(session_id)
            return FetchContext([], error=ErrorCode.fetch_session_id_not_found)
        session.epoch = next_epoch(session.epoch)
        self._touch(session)
        return FetchContext(session.wanted(), session=session, uses_topic_ids=ids)

    def create(self, request: FetchRequest, topics: list[tuple[TopicKey, list[FetchPartition]]],
               uses_topic_ids: bool) -> int:
        """A new session for a full fetch answered with ``topics`` (read from the request's
        partitions, in its order; named by id if ``uses_topic_ids``): its id, or 0 where there
        is no room for it (checked before anything is built)."""
        size = sum(len(t.partitions) for t in request.topics)
        if not size or self.partitions + size > self.max_partitions:
            return INVALID_SESSION_ID
        now = self._now_ms()
        if len(self._sessions) >= self.slots and not self._evict_for(size, now):
            return INVALID_SESSION_ID
        partitions: dict[Key, CachedPartition] = {}
        for t, (key, answered) in zip(request.topics, topics):
            for p, out in zip(t.partitions, answered):
                cached = partitions[(key, p.partition)] = CachedPartition(p)
                cached.answered(out)
        session_id = self._rng.randint(1, 2**31 - 1)
        while session_id in self._sessions:
            session_id = self._rng.randint(1, 2**31 - 1)
        self._sessions[session_id] = FetchSession(session_id, partitions, now, uses_topic_ids)
        self.partitions += len(partitions)
        return session_id

    def _evict_for(self, size: int, now: int) -> bool:
        """Make room for a session of ``size`` partitions: the least recently used one if it
        has gone unused for EVICTION_MS, else the smallest one created before that, if smaller."""
        victim = next(iter(self._sessions.values()))
        if now - victim.last_used_ms <= EVICTION_MS:
            old = [s for s in self._sessions.values() if now - s.created_ms > EVICTION_MS]
            smallest = min(old, key=lambda s: (s.size, s.id), default=None)
            if smallest is None or smallest.size >= size:
                return False
            victim = smallest
        self._remove(victim.id)
        self.evictions += 1
        return True

    def _touch(self, session: FetchSession) -> None:
        session.last_used_ms = self._now_ms()
        del self._sessions[session.id]
        self._sessions[session.id] = session

    def _remove(self, session_id: int) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            self.partitions -= session.size

