"""The runner's concurrency limit: found by probing, lowered by a 429, scaled with the endpoint's replicas."""

from __future__ import annotations

import asyncio

from airflow_provider_hfep.inference.batch import AdaptiveLimit


def test_the_limit_follows_replicas_up_and_down_within_its_maximum():
    async def main() -> list[int]:
        limit = AdaptiveLimit(maximum=128, initial=32)
        seen = [limit.limit]
        await limit.rescale(4 / 1)  # autoscaling added three replicas
        seen.append(limit.limit)
        await limit.rescale(8 / 4)  # more than the maximum allows
        seen.append(limit.limit)
        await limit.rescale(1 / 8)  # scaled back down: the runner backs off at once
        seen.append(limit.limit)
        return seen

    assert asyncio.run(main()) == [32, 128, 128, 16]


def test_a_429_sets_the_limit_to_what_the_endpoint_had_accepted():
    async def main() -> int:
        limit = AdaptiveLimit(maximum=64, initial=16)
        tickets = [await limit.acquire() for _ in range(10)]
        await limit.release(tickets[7], overloaded=True)  # the 8th was refused: 7 sent before it were taken
        return limit.limit

    assert asyncio.run(main()) == 7


def test_a_stated_capacity_is_the_start_and_the_ceiling_and_follows_the_replicas():
    async def main() -> list[int]:
        limit = AdaptiveLimit(maximum=64, known=8)
        seen = [limit.limit]
        for _ in range(200):  # a long run of successes: it would probe higher, but the server said 8
            await limit.release(await limit.acquire(), overloaded=False)
        seen.append(limit.limit)
        await limit.rescale(3 / 1)  # two replicas added: each takes 8
        seen.append(limit.limit)
        for _ in range(500):
            await limit.release(await limit.acquire(), overloaded=False)
        seen.append(limit.limit)
        await limit.rescale(1 / 3)
        seen.append(limit.limit)
        return seen

    assert asyncio.run(main()) == [8, 8, 24, 24, 8]


def test_a_stated_capacity_above_the_maximum_is_held_to_it():
    assert AdaptiveLimit(maximum=32, known=128).limit == 32


def test_freed_slots_admit_as_many_waiters_and_no_more():
    async def main() -> tuple[int, int]:
        limit = AdaptiveLimit(maximum=4, known=4)
        held = [await limit.acquire() for _ in range(4)]
        waiting = [asyncio.ensure_future(limit.acquire()) for _ in range(6)]
        await asyncio.sleep(0)
        await limit.release(held[0], overloaded=False)
        await limit.release(held[1], overloaded=False)
        for _ in range(5):
            await asyncio.sleep(0)
        started = sum(w.done() for w in waiting)
        for w in waiting:
            w.cancel()
        return started, limit.in_flight

    assert asyncio.run(main()) == (2, 4)
