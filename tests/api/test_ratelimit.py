import time

from jobyard.api.ratelimit import RateLimiter


def test_hits_are_counted_per_key_and_refused_past_the_limit():
    rl = RateLimiter("3/minute")
    assert rl.window == "1m" and RateLimiter("5000/hour").window == "1h"
    verdicts = [rl.hit("a") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    refused = verdicts[3]
    assert 1 <= refused.retry_after <= 60
    assert refused.headers()["Retry-After"] == str(refused.retry_after)
    assert refused.headers()["X-RateLimit-Limit"] == "3"
    assert int(refused.headers()["X-RateLimit-Reset"]) >= int(time.time())
    assert rl.hit("b").allowed  # another key has its own window
    assert rl.peek("a").remaining == 0 and rl.peek("c").remaining == 3


def test_a_hit_can_cost_more_than_one():
    rl = RateLimiter("10/hour")
    assert rl.hit("u", cost=7).remaining == 3
    assert not rl.hit("u", cost=4).allowed
    assert rl.hit("u", cost=3).allowed
