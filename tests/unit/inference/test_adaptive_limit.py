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
