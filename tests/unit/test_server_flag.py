"""The per-connection flag of broker/server.py behaves as asyncio.Event does for its users."""

from __future__ import annotations

import asyncio

import pytest

from tomyum.broker.server import _Flag

pytestmark = pytest.mark.timeout(10)


def test_wait_returns_at_once_when_set_and_after_set_otherwise() -> None:
    async def main() -> None:
        flag = _Flag(True)
        await asyncio.wait_for(flag.wait(), 1)
        flag.clear()
        assert not flag.is_set()
        waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in waiters)
        flag.set()
        flag.clear()  # set then cleared before the waiters ran: they wake all the same (as Event)
        await asyncio.wait_for(asyncio.gather(*waiters), 1)
        assert flag._waiters is None

    asyncio.run(main())


def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    async def main() -> None:
        flag = _Flag()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(flag.wait(), 0.01)
        assert not flag._waiters
        other = asyncio.create_task(flag.wait())
        await asyncio.sleep(0)
        flag.set()
        await asyncio.wait_for(other, 1)

    asyncio.run(main())
