import time

from jobyard.api.ratelimit import RateLimiter
from jobyard.testing import ServerProcess


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


def test_limiters_on_one_shared_storage_count_together_per_rule(redis_url):
    # Two replicas' limiters of one rule: one count; another rule keeps its own.
    name = f"rule-{time.time_ns()}"
    here, there = (RateLimiter("3/minute", name, redis_url) for _ in range(2))
    other = RateLimiter("3/minute", name + "-other", redis_url)
    assert [here.hit("u").allowed, there.hit("u").allowed, here.hit("u").allowed] == [True] * 3
    refused = there.hit("u")
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after >= 1
    assert other.hit("u").remaining == 2
    assert RateLimiter("3/minute", name).hit("u").allowed  # memory: this process's own


def test_replicas_given_one_storage_share_a_user_s_credits(redis_url, tmp_path):
    from tests.api.dialects.xplenty.conftest import xclient
    from tests.conftest import drop_pg_database, pg_database

    url, admin, db = pg_database()
    env = {"JOBYARD_XPLENTY_RATE_LIMIT": "4/hour", "JOBYARD_RATE_LIMIT_STORAGE": redis_url}
    servers = [ServerProcess(tmp_path / name, database_url=url, env=env).start()
               for name in ("one", "two")]
    try:
        left = []
        for server in (*servers, *servers):
            with xclient(server) as x:
                left.append(x.get("/jobs").headers["x-ratelimit-remaining"])
        assert left == ["3", "2", "1", "0"]
        with xclient(servers[0]) as x:
            assert x.get("/jobs").status_code == 429
    finally:
        for server in servers:
            server.stop()
        drop_pg_database(admin, db)
