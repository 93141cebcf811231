"""Tests for the work-queue rate limiters (client-go default_rate_limiters semantics)."""

from __future__ import annotations

import math

import pytest

from opkit.clock import FakeClock
from opkit.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter,
    MaxOfRateLimiter,
    WithMaxWaitRateLimiter,
    default_controller_rate_limiter,
    default_item_based_rate_limiter,
)

# -- exponential --------------------------------------------------------------------------------


def test_exponential_sequence_doubles_from_base() -> None:
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    got = [rl.when("a") for _ in range(6)]
    assert got == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16])
    assert rl.num_requeues("a") == 6


def test_exponential_is_per_item() -> None:
    rl = ItemExponentialFailureRateLimiter(0.001, 1.0)
    rl.when("a")
    rl.when("a")
    assert rl.when("b") == pytest.approx(0.001)
    assert rl.num_requeues("a") == 2
    assert rl.num_requeues("b") == 1
    assert rl.num_requeues("never") == 0


def test_exponential_caps_at_max_delay() -> None:
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [rl.when("a") for _ in range(25)]
    # 0.005 * 2**17 = 655.36 is the last value under the cap.
    assert delays[17] == pytest.approx(655.36)
    assert delays[18:] == [1000.0] * 7


def test_exponential_survives_huge_exponents() -> None:
    rl = ItemExponentialFailureRateLimiter(0.001, 1000.0)
    last = [rl.when("a") for _ in range(1100)][-1]  # 2.0**1099 overflows a float
    assert last == 1000.0
    assert rl.num_requeues("a") == 1100


def test_exponential_with_zero_base_never_waits() -> None:
    rl = ItemExponentialFailureRateLimiter(0.0, 10.0)
    assert [rl.when("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    for _ in range(1100):
        rl.when("a")
    assert rl.when("a") == 10.0  # overflow still maps to the cap


def test_exponential_forget_resets() -> None:
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(5):
        rl.when("a")
    rl.forget("a")
    rl.forget("unknown")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == pytest.approx(0.005)


def test_exponential_rejects_negative_delays() -> None:
    with pytest.raises(ValueError, match="negative"):
        ItemExponentialFailureRateLimiter(-1, 10)


def test_default_item_based_limiter_starts_at_one_millisecond() -> None:
    rl = default_item_based_rate_limiter()
    assert rl.when("a") == pytest.approx(0.001)
    assert rl.max_delay == 1000.0


# -- fast/slow ----------------------------------------------------------------------------------


def test_fast_slow_switches_after_max_fast_attempts() -> None:
    rl = ItemFastSlowRateLimiter(0.005, 10.0, 3)
    assert [rl.when("a") for _ in range(5)] == [0.005, 0.005, 0.005, 10.0, 10.0]
    assert rl.num_requeues("a") == 5
    assert rl.when("b") == 0.005
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == 0.005


# -- bucket -------------------------------------------------------------------------------------


def test_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(10, 100, clock=clock)
    assert [rl.when(i) for i in range(100)] == [0.0] * 100
    # Each further call reserves the next token: 0.1 s, 0.2 s, 0.3 s from now.
    assert [rl.when(i) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert rl.num_requeues(1) == 0


def test_bucket_refills_with_time() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(10, 100, clock=clock)
    for i in range(103):
        rl.when(i)  # 3 tokens in debt
    clock.step(1)  # +10 tokens -> 7 available
    assert [rl.when("x") for _ in range(7)] == [0.0] * 7
    assert rl.when("x") == pytest.approx(0.1)


def test_bucket_never_exceeds_burst_after_idle() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(1, 2, clock=clock)
    clock.step(3600)
    assert [rl.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


def test_bucket_is_shared_by_all_items_and_forget_is_a_noop() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(1, 1, clock=clock)
    assert rl.when("a") == 0.0
    rl.forget("a")
    assert rl.when("b") == pytest.approx(1.0)


def test_bucket_infinite_qps_never_waits() -> None:
    rl = BucketRateLimiter(math.inf, 1)
    assert [rl.when("a") for _ in range(5)] == [0.0] * 5


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="qps"):
        BucketRateLimiter(0, 10)
    with pytest.raises(ValueError, match="burst"):
        BucketRateLimiter(10, 0)


# -- max-of / max-wait / default ----------------------------------------------------------------


def test_max_of_returns_longest_delay_and_feeds_every_limiter() -> None:
    clock = FakeClock()
    exp = ItemExponentialFailureRateLimiter(0.001, 1000.0)
    fast_slow = ItemFastSlowRateLimiter(0.0, 5.0, 1)
    rl = MaxOfRateLimiter(exp, fast_slow, BucketRateLimiter(1, 100, clock=clock))
    assert rl.when("a") == pytest.approx(0.001)
    assert rl.when("a") == 5.0
    assert exp.num_requeues("a") == 2
    assert fast_slow.num_requeues("a") == 2
    assert rl.num_requeues("a") == 2
    rl.forget("a")
    assert exp.num_requeues("a") == 0
    assert fast_slow.num_requeues("a") == 0


def test_max_of_requires_a_limiter() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MaxOfRateLimiter()


def test_with_max_wait_caps_delay() -> None:
    inner = ItemExponentialFailureRateLimiter(1.0, 1000.0)
    rl = WithMaxWaitRateLimiter(inner, 3.0)
    assert [rl.when("a") for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert rl.num_requeues("a") == 4
    rl.forget("a")
    assert inner.num_requeues("a") == 0


def test_default_controller_rate_limiter_per_item_sequence() -> None:
    rl = default_controller_rate_limiter(clock=FakeClock())
    assert [rl.when("a") for _ in range(4)] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert rl.num_requeues("a") == 4


def test_default_controller_rate_limiter_overall_bucket_kicks_in_after_burst() -> None:
    clock = FakeClock()
    rl = default_controller_rate_limiter(clock=clock)
    first = [rl.when(f"item-{i}") for i in range(100)]
    assert first == pytest.approx([0.005] * 100)
    assert rl.when("item-100") == pytest.approx(0.1)  # 10 qps once the burst of 100 is used
    assert rl.when("item-101") == pytest.approx(0.2)


def test_default_controller_rate_limiter_caps_at_1000_seconds() -> None:
    rl = default_controller_rate_limiter(clock=FakeClock())
    assert [rl.when("a") for _ in range(40)][-1] == 1000.0
