from jobyard.core.models import Resources
from jobyard.daemon.inventory import Allocator, Inventory
from jobyard.daemon.scheduler import admit
from tests.daemon.test_outcome import make_job


def job(job_id, gpus=0, cpus=1.0, priority=0, retry_at=None):
    j = make_job(state="queued")
    j.id, j.resources, j.priority = job_id, Resources(gpus, cpus, 0), priority
    j.next_retry_at = retry_at
    return j


def test_gpus_are_pinned_and_never_given_twice():
    alloc = Allocator(Inventory(gpus=[0, 1, 2], cpus=8, memory_mb=1000, gpu_source="virtual"))
    got = admit([job(1, gpus=2), job(2, gpus=1), job(3, gpus=1)], alloc, now=0)
    assert [(j.id, a["gpus"]) for j, a in got] == [(1, [0, 1]), (2, [2])]
    alloc.release(1)
    got = admit([job(3, gpus=1), job(4, gpus=1)], alloc, now=0)
    assert [(j.id, a["gpus"]) for j, a in got] == [(3, [0]), (4, [1])]
    assert alloc.free().gpus == 0


def test_a_blocked_big_job_is_not_starved_by_small_ones():
    alloc = Allocator(Inventory(gpus=[0, 1], cpus=8, memory_mb=1000, gpu_source="virtual"))
    admit([job(1, gpus=1)], alloc, now=0)  # one GPU busy
    got = admit([job(2, gpus=2), job(3, gpus=1)], alloc, now=0)
    assert got == []  # job 3 may not take the GPU job 2 waits for


def test_waiting_for_retry_is_skipped_until_due():
    alloc = Allocator(Inventory(gpus=[], cpus=2, memory_mb=0, gpu_source="none"))
    assert admit([job(1, retry_at=50.0)], alloc, now=10.0) == []
    assert [j.id for j, _ in admit([job(1, retry_at=50.0)], alloc, now=60.0)] == [1]
