"""``Consumer``: a group member that hands messages to an ``each_message`` or ``each_batch``
handler, in the shape of KafkaJS's consumer, over a librdkafka consumer.

The librdkafka handle lives in one worker thread (:class:`SerialThread`): polls, rebalance
callbacks, committed-offset lookups and ``close`` all run there, so none of them ever blocks
the event loop. Handlers and event listeners run on the event loop, between polls.

Offsets are committed as KafkaJS's ``autoCommit`` does: a message's offset is stored once its
handler returns (for ``each_batch``, once the batch's handler returns) and librdkafka commits
stored offsets every ``auto.commit.interval.ms``, on a rebalance and on ``disconnect``. A message
whose handler raised is never committed, so the group reads it again: at-least-once.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka import Consumer as RdKafkaConsumer
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import Message as RdKafkaMessage

from tomyum.client._connection import ClientConfig, SerialThread, probe
from tomyum.client._errors import ClientError
from tomyum.client._events import ConsumerEvents, EventEmitter, Listener
from tomyum.client._message import Batch, Message

log = logging.getLogger("tomyum.client")

EachMessage = Callable[[Message], Awaitable[None] | None]
EachBatch = Callable[[Batch], Awaitable[None] | None]

#: how long one poll waits for a message; also the longest ``disconnect`` waits for the loop
POLL_TIMEOUT_S = 0.1
#: the most messages one poll hands to the handlers
MAX_POLL_MESSAGES = 500
#: the longest ``disconnect`` waits for the broker to take the last commit and the leave; a
#: broker that is gone would otherwise hold it for the session timeout
CLOSE_TIMEOUT_S = 1.0
#: the same while librdkafka says every broker is down (nothing received since): a Ctrl-C then
#: ends the program at once rather than after a wait that cannot succeed
BROKERS_DOWN_CLOSE_TIMEOUT_S = 0.2


async def _close_within(consumer: RdKafkaConsumer, seconds: float) -> bool:
    """Closes ``consumer`` (commit, leave the group) in a daemon thread of its own, so that a
    close still waiting for a gone broker holds neither ``disconnect`` nor the process's exit
    longer than ``seconds``; whether it finished. The poll loop has ended: nothing else uses
    the handle."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if not done.done():
            done.set_result(None) if error is None else done.set_exception(error)

    def close() -> None:
        error: BaseException | None = None
        try:
            consumer.close()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting loop
            error = e
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    threading.Thread(target=close, name="consumer-close", daemon=True).start()
    try:
        await asyncio.wait_for(asyncio.shield(done), seconds)
    except TimeoutError:
        return False
    return True


async def _call(handler: Callable[[Any], Awaitable[None] | None], arg: Any) -> None:
    result = handler(arg)
    if inspect.isawaitable(result):
        await result


class Consumer:
    """A member of consumer group ``group_id``; create with :meth:`tomyum.client.Kafka.consumer`.

    ``connect``, ``subscribe`` (one or more times), then ``run`` with one handler; ``run``
    returns once consuming has started, as in KafkaJS, and consuming goes on in a task until
    ``disconnect`` or a crash. Listen with :meth:`on` for :class:`ConsumerEvents`.
    """

    events = ConsumerEvents

    def __init__(self, config: ClientConfig, group_id: str, settings: Mapping[str, Any]) -> None:
        self.group_id = group_id
        self._config = config
        self._settings = config.librdkafka({
            "group.id": group_id,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "latest",
            "allow.auto.create.topics": True,
        }, settings)
        self._emitter = EventEmitter(ConsumerEvents.ALL)
        self._topics: list[str] = []
        self._from_beginning: list[str | re.Pattern[str]] = []
        self._consumer: RdKafkaConsumer | None = None
        self._thread: SerialThread | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Set in the worker thread (rebalance and error callbacks), read by the loop after a poll.
        self._joins: list[dict[str, Any]] = []
        self._fatal: RdKafkaError | None = None
        #: librdkafka said every broker is down, and nothing was received since
        self._brokers_down = False

    def on(self, name: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on each ``name`` event; returns a function that removes it."""
        return self._emitter.on(name, listener)

    async def connect(self) -> None:
        """Create the librdkafka consumer and reach the cluster (raises :class:`ClientError`);
        emits ``consumer.connect``."""
        if self._consumer is not None:
            return
        thread = SerialThread(f"tomyum-consumer-{self.group_id}")
        consumer = RdKafkaConsumer({**self._settings, "error_cb": self._on_error})
        try:
            await probe(consumer.list_topics, self._config, f"consumer of group {self.group_id}", thread.call)
        except BaseException:
            await thread.call(consumer.close)
            thread.shutdown()
            raise
        self._consumer, self._thread, self._stopping, self._fatal = consumer, thread, False, None
        await self._emitter.emit(ConsumerEvents.CONNECT, {})

    async def subscribe(self, topic: str | re.Pattern[str] | Iterable[str | re.Pattern[str]], *,
                        from_beginning: bool = False) -> None:
        """Add topics (names or compiled patterns) to read. With ``from_beginning``, a partition
        the group has no committed offset for is read from its first offset, else from its end.
        Call before :meth:`run`."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("subscribe before run: the consumer is already running")
        topics = [topic] if isinstance(topic, (str, re.Pattern)) else list(topic)
        for t in topics:
            self._topics.append(t if isinstance(t, str) else "^" + t.pattern.removeprefix("^"))
            if from_beginning:
                self._from_beginning.append(t)

    async def run(self, *, each_message: EachMessage | None = None, each_batch: EachBatch | None = None) -> None:
        """Join the group and start handing messages to the one handler given (plain or async);
        returns once started. A handler that raises crashes the consumer (``consumer.crash``)."""
        consumer, thread = self._require()
        if (each_message is None) == (each_batch is None):
            raise TypeError("run() takes exactly one of each_message and each_batch")
        if not self._topics:
            raise RuntimeError("nothing to consume: await consumer.subscribe(topic) first")
        if self._task is not None and not self._task.done():
            raise RuntimeError("the consumer is already running")
        if self._settings.get("allow.auto.create.topics") in (True, "true"):
            # librdkafka's group join does not create topics (librdkafka#3395); its metadata
            # request for a named topic does, as KafkaJS's consumer does.
            for topic in self._topics:
                if not topic.startswith("^"):
                    await probe(functools.partial(consumer.list_topics, topic), self._config,
                                f"consumer of group {self.group_id}", thread.call)
        await thread.call(consumer.subscribe, self._topics, on_assign=self._on_assign)
        if each_message is not None:
            handle = self._each_message(consumer, each_message)
        else:
            assert each_batch is not None
            handle = self._each_batch(consumer, each_batch)
        self._task = asyncio.create_task(self._consume(consumer, thread, handle),
                                         name=f"tomyum consumer {self.group_id}")

    async def disconnect(self) -> None:
        """Stop consuming (after the message in hand), commit what was handled, leave the group
        and close; emits ``consumer.disconnect``. Idempotent. Called from a handler or a
        listener, it only asks the consumer to stop, and returns."""
        self._stopping = True
        task = self._task
        if task is not None and not task.done():  # the task closes the consumer when it ends
            if task is not asyncio.current_task():
                await asyncio.wait([task])
        elif self._consumer is not None:
            await self._close(None)

    def _require(self) -> tuple[RdKafkaConsumer, SerialThread]:
        if self._consumer is None or self._thread is None:
            raise RuntimeError("consumer is not connected: await consumer.connect() first")
        return self._consumer, self._thread

    async def _consume(self, consumer: RdKafkaConsumer, thread: SerialThread,
                       handle: Callable[[list[Message]], Awaitable[None]]) -> None:
        error: Exception | None = None
        try:
            while not self._stopping:
                joins, messages = await thread.call(self._poll, consumer)
                for payload in joins:
                    await self._emitter.emit(ConsumerEvents.GROUP_JOIN, payload)
                if self._fatal is not None:
                    raise ClientError(self._fatal, f"consumer of group {self.group_id}")
                await handle(messages)
        except Exception as e:
            error = e
            log.error("consumer of group %s crashed: %r", self.group_id, e)
        finally:
            await self._close(error)

    def _poll(self, consumer: RdKafkaConsumer) -> tuple[list[dict[str, Any]], list[Message]]:
        """In the worker thread: wait up to POLL_TIMEOUT_S for a message, then take whatever
        else is already fetched."""
        first = consumer.poll(POLL_TIMEOUT_S)
        raw = [] if first is None else [first, *consumer.consume(MAX_POLL_MESSAGES - 1, timeout=0)]
        if raw:
            self._brokers_down = False
        joins, self._joins = self._joins, []
        return joins, [Message.from_rdkafka(m) for m in raw if self._usable(m)]

    def _usable(self, m: RdKafkaMessage) -> bool:
        err = m.error()
        if err is None:
            return True
        if err.fatal():
            self._fatal = err
        elif err.code() != RdKafkaError._PARTITION_EOF:
            log.warning("consumer of group %s: %s (topic %s, partition %s)", self.group_id, err.str(),
                        m.topic(), m.partition())
        return False

    def _each_message(self, consumer: RdKafkaConsumer,
                      handler: EachMessage) -> Callable[[list[Message]], Awaitable[None]]:
        async def handle(messages: list[Message]) -> None:
            for m in messages:
                if self._stopping:
                    return
                await _call(handler, m)
                self._store(consumer, m)
        return handle

    def _each_batch(self, consumer: RdKafkaConsumer,
                    handler: EachBatch) -> Callable[[list[Message]], Awaitable[None]]:
        async def handle(messages: list[Message]) -> None:
            by_partition: dict[tuple[str, int], list[Message]] = {}
            for m in messages:
                by_partition.setdefault((m.topic, m.partition), []).append(m)
            for (topic, partition), batch in by_partition.items():
                if self._stopping:
                    return
                await _call(handler, Batch(topic=topic, partition=partition, messages=tuple(batch),
                                           high_watermark=self._high_watermark(consumer, topic, partition)))
                self._store(consumer, batch[-1])
        return handle

    def _store(self, consumer: RdKafkaConsumer, m: Message) -> None:
        """Mark ``m`` handled: its next offset is committed with the next auto-commit."""
        try:
            consumer.store_offsets(offsets=[TopicPartition(m.topic, m.partition, m.offset + 1)])
        except KafkaException as e:  # the partition was revoked meanwhile: its new owner reads it again
            log.debug("consumer of group %s: offset %d of %s[%d] not stored: %s", self.group_id,
                      m.offset, m.topic, m.partition, e)

    @staticmethod
    def _high_watermark(consumer: RdKafkaConsumer, topic: str, partition: int) -> int:
        try:
            watermarks = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except KafkaException:
            return -1
        return watermarks[1] if watermarks and watermarks[1] >= 0 else -1

    def _on_assign(self, consumer: RdKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Rebalance callback (worker thread): start ``from_beginning`` partitions without a
        committed offset at their first offset, assign, and queue a ``consumer.group_join``."""
        self._brokers_down = False
        starts = [p for p in partitions if self._reads_from_beginning(p.topic)]
        if starts:
            try:
                committed = consumer.committed(starts, timeout=self._config.connection_timeout_ms / 1000)
            except KafkaException as e:
                log.warning("consumer of group %s: committed offsets unknown (%s); starting as "
                            "auto.offset.reset says", self.group_id, e)
                committed = [TopicPartition(p.topic, p.partition, 0) for p in starts]
            fresh = {(c.topic, c.partition) for c in committed if c.offset < 0}
            for p in starts:
                if (p.topic, p.partition) in fresh:
                    p.offset = OFFSET_BEGINNING
        if self._incremental():
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        assignment: dict[str, list[int]] = {}
        for p in consumer.assignment():
            assignment.setdefault(p.topic, []).append(p.partition)
        self._joins.append({"group_id": self.group_id, "member_id": consumer.memberid(),
                            "member_assignment": {t: sorted(ps) for t, ps in sorted(assignment.items())}})

    def _reads_from_beginning(self, topic: str) -> bool:
        return any(t == topic if isinstance(t, str) else t.search(topic) for t in self._from_beginning)

    def _incremental(self) -> bool:
        return (self._settings.get("group.protocol") == "consumer"
                or "cooperative" in str(self._settings.get("partition.assignment.strategy", "")))

    def _on_error(self, err: RdKafkaError) -> None:
        """librdkafka's error callback (worker thread): a fatal error crashes the consumer; the
        others (a broker unreachable for a while) librdkafka logs and retries by itself."""
        if err.fatal():
            self._fatal = err
        else:  # librdkafka logs these itself
            if err.code() == RdKafkaError._ALL_BROKERS_DOWN:
                self._brokers_down = True
            log.debug("consumer of group %s: %s", self.group_id, err.str())

    async def _close(self, error: Exception | None) -> None:
        consumer, thread = self._consumer, self._thread
        self._consumer = self._thread = None
        if consumer is not None and thread is not None:
            try:
                wait_s = BROKERS_DOWN_CLOSE_TIMEOUT_S if self._brokers_down else CLOSE_TIMEOUT_S
                if not await _close_within(consumer, wait_s):
                    log.warning("consumer of group %s: the broker did not answer within %gs; closed without "
                                "committing the last offsets or leaving the group", self.group_id, wait_s)
            except KafkaException as e:
                log.warning("consumer of group %s: close: %s", self.group_id, e)
            finally:
                thread.shutdown()
        if error is not None:
            await self._emitter.emit(ConsumerEvents.CRASH,
                                     {"group_id": self.group_id, "error": error, "restart": False})
        await self._emitter.emit(ConsumerEvents.DISCONNECT, {})
