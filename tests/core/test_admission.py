"""Token bucket and caps: pure functions over numbers."""

from __future__ import annotations

import pytest

from bot.admission import Bucket, Limits, Pending, check_caps, full_bucket, refill, take_token
from bot.errors import QueueFull, RateLimited

LIMITS = Limits(
    rate_per_minute=6, burst=3, max_pending_per_user=2, max_pending_per_server=4, max_queue=10
)


def test_burst_then_refusal_with_the_wait() -> None:
    bucket = full_bucket(0.0, LIMITS)
    for _ in range(3):
        bucket = take_token(bucket, 0.0, LIMITS)
    with pytest.raises(RateLimited) as err:
        take_token(bucket, 4.0, LIMITS)
    assert err.value.retry_after == pytest.approx(6.0)
    assert str(err.value) == "You are going a bit fast: you can queue again in 6 s."
    assert take_token(bucket, 10.0, LIMITS).tokens == pytest.approx(0.0)


def test_refill_is_capped_and_ignores_a_clock_going_back() -> None:
    assert refill(Bucket(0.0, 0.0), 3600.0, LIMITS).tokens == 3.0
    assert refill(Bucket(1.0, 100.0), 50.0, LIMITS).tokens == 1.0


def test_long_waits_are_said_in_minutes() -> None:
    slow = Limits(0.25, 1, 1, 1, 1)
    with pytest.raises(RateLimited, match="in 4 min"):
        take_token(Bucket(0.0, 0.0), 0.0, slow)


@pytest.mark.parametrize(
    ("pending", "message"),
    [
        (Pending(2, 2, 2), "You already have 2 images waiting (the limit is 2)"),
        (Pending(1, 4, 4), "This server already has 4 images waiting"),
        (Pending(1, 1, 10), "The queue is full (10 images waiting)"),
    ],
)
def test_caps_say_why_and_when(pending: Pending, message: str) -> None:
    with pytest.raises(QueueFull) as err:
        check_caps(pending, LIMITS, eta_s=30.0)
    assert message in str(err.value)
    assert "30 s" in str(err.value)


def test_under_the_caps_passes() -> None:
    check_caps(Pending(1, 3, 9), LIMITS, eta_s=0.0)
