"""Rate limits in memory and in Redis: counted per hashed key, shared across limiter instances."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from app.errors import TooManyRequests
from app.ratelimit import RateLimiter, Rule, networks
from tests.databases import unavailable

REDIS_URL = os.environ.get("APPEALS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MakeLimiter = Callable[..., RateLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    """Builds limiters on one kind of storage; each limiter stands for one web process."""
    url = None if request.param == "memory" else REDIS_URL
    made: list[RateLimiter] = []

    def make(secret: str = "secret") -> RateLimiter:
        made.append(RateLimiter(url, secret))
        return made[-1]

    if url is not None and not await make().available():
        await made[0].aclose()
        unavailable(f"Redis is not reachable at {REDIS_URL}")
    yield make
    for limiter in made:
        await limiter.aclose()


def _rule(spec: str) -> Rule:
    # A unique name per test keeps runs against one Redis apart.
    return Rule.parse(f"test-{uuid.uuid4().hex[:8]}", spec)


async def test_limit_is_enforced_with_retry_after(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    rule = _rule("3/minute")
    for _ in range(3):
        await limiter.hit([(rule, "203.0.113.7")], "slow down")
    with pytest.raises(TooManyRequests) as refused:
        await limiter.hit([(rule, "203.0.113.7")], "slow down")
    assert refused.value.status_code == 429
    assert refused.value.retry_after is not None
    assert 1 <= refused.value.retry_after <= 60
    await limiter.hit([(rule, "203.0.113.8")], "another address is not affected")


async def test_every_rate_of_a_rule_counts(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    rule = _rule("10/minute;2/hour")
    await limiter.hit([(rule, "k")], "m")
    await limiter.hit([(rule, "k")], "m")
    with pytest.raises(TooManyRequests):
        await limiter.hit([(rule, "k")], "m")


async def test_sharing_between_processes(
    make_limiter: MakeLimiter, request: pytest.FixtureRequest
) -> None:
    first, second = make_limiter(), make_limiter()
    rule = _rule("2/minute")
    await first.hit([(rule, "198.51.100.1")], "m")
    await second.hit([(rule, "198.51.100.1")], "m")
    shared = "redis" in request.node.callspec.id
    if shared:
        # Through Redis the two processes draw on one budget.
        with pytest.raises(TooManyRequests):
            await first.hit([(rule, "198.51.100.1")], "m")
    else:
        # In memory each process keeps its own count.
        await first.hit([(rule, "198.51.100.1")], "m")


async def test_keys_are_keyed_hashes_not_addresses(
    make_limiter: MakeLimiter, request: pytest.FixtureRequest
) -> None:
    limiter = make_limiter()
    assert "192.0.2.55" not in limiter.pseudonym("192.0.2.55")
    assert limiter.pseudonym("192.0.2.55") != make_limiter("other").pseudonym("192.0.2.55")
    rule = _rule("5/minute")
    await limiter.hit([(rule, "192.0.2.55")], "m")
    if "redis" in request.node.callspec.id:
        client: Redis = Redis.from_url(REDIS_URL)
        keys = [key.decode() async for key in client.scan_iter(match=f"*{rule.name}*")]
        await client.aclose()
        assert keys
        assert all("192.0.2.55" not in key for key in keys)
        assert any(limiter.pseudonym("192.0.2.55") in key for key in keys)


def test_networks_of_an_address() -> None:
    assert networks("203.0.113.77") == [
        ("address", "203.0.113.77"),
        ("net24", "203.0.113.0/24"),
        ("net16", "203.0.0.0/16"),
    ]
    assert networks("2001:db8::1")[1] == ("net64", "2001:db8::/64")
    assert networks("not-an-ip") == [("address", "not-an-ip")]
    # An IPv4 client on a dual-stack socket is still keyed by its own /24, not by ::/64.
    assert networks("::ffff:203.0.113.77")[1] == ("net24", "203.0.113.0/24")


def test_memory_windows_refuse_then_forget_old_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import ratelimit

    now = [1000.0]
    monkeypatch.setattr("app.ratelimit.time.monotonic", lambda: now[0])
    windows = ratelimit.MemoryWindows()
    (rate,) = Rule.parse("t", "2/minute").rates
    assert windows.hit(rate, "t", "k") is None
    now[0] += 10
    assert windows.hit(rate, "t", "k") is None
    now[0] += 10
    assert windows.hit(rate, "t", "k") == pytest.approx(40)  # the first hit leaves at 1060
    assert windows.hit(rate, "t", "other") is None  # another key is not affected
    now[0] = 1060.5
    assert windows.hit(rate, "t", "k") is None  # the first hit has left the window
    # A minute later both keys' windows are over: the sweep forgets them.
    now[0] = 1200.0
    windows.hit(rate, "t", "third")
    assert [slot[2] for slot in windows._hits] == ["third"]
