import asyncio

from jobyard.core.models import JobEvent
from jobyard.events.hub import EventHub
from jobyard.events.notify import Notifier


class EventLog:
    """Just the store calls the hub makes, counting the event reads."""

    def __init__(self) -> None:
        self.rows: list[JobEvent] = []
        self.reads = 0
        self.state = "running"

    def add(self, state: str, kind: str = "state") -> None:
        self.rows.append(JobEvent(len(self.rows) + 1, 1, 0.0, kind, state, {}))
        if kind == "state":
            self.state = state

    def events(self, job_id, after=0, limit=500):
        self.reads += 1
        return [e for e in self.rows if e.id > after][:limit]

    def last_event_id(self, job_id):
        return self.rows[-1].id if self.rows else 0

    def get_job(self, job_id):
        return type("J", (), {"is_terminal": self.state in ("completed", "canceled")})()


async def inline(fn, *args):
    return fn(*args)


async def test_many_followers_share_one_reader_and_miss_nothing():
    log, notifier = EventLog(), Notifier()
    notifier.bind(asyncio.get_running_loop())
    hub = EventHub(log, notifier, inline)
    log.add("queued")
    log.add("running")

    async def follow(after):
        return [ev.id async for ev in hub.follow(1, after)]

    followers = [asyncio.create_task(follow(i % 3)) for i in range(200)]
    while sum(len(t.followers) for t in hub._topics.values()) < 200:
        await asyncio.sleep(0)
    reads_before = log.reads
    for _ in range(5):
        log.add("running", kind="progress")
        notifier.notify([1])
        await asyncio.sleep(0.01)
    log.add("completed")
    notifier.notify([1])
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    for i, ids in enumerate(results):
        assert ids == list(range(i % 3 + 1, 9)), ids  # in order, none missing or repeated
    assert log.reads - reads_before <= 12  # one reader, not two hundred
    assert hub._topics == {}  # nothing left behind


async def test_following_an_ended_job_replays_then_closes():
    log, notifier = EventLog(), Notifier()
    notifier.bind(asyncio.get_running_loop())
    hub = EventHub(log, notifier, inline)
    for state in ("queued", "running", "completed"):
        log.add(state)
    assert [ev.id async for ev in hub.follow(1, 0)] == [1, 2, 3]
    assert [ev.id async for ev in hub.follow(1, 3)] == []
