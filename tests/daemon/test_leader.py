"""Leadership: one daemon at a time on both stores; on PostgreSQL a lease that passes when it is
not renewed, with a fencing token every write of the old holder is refused by."""

import contextvars

import pytest

from jobyard.daemon.leader import Leadership
from jobyard.errors import Fenced
from jobyard.store.engine import FENCE
from jobyard.testing import wait_until


def test_only_one_daemon_leads_until_it_lets_go(store, tmp_path):
    first, second = (Leadership(store.engines, tmp_path) for _ in range(2))
    assert first.try_acquire() and first.held
    assert not second.try_acquire() and not second.held
    assert first.renew()
    first.release()
    assert not first.held
    assert second.try_acquire()  # at once: a released lease need not expire
    assert not first.try_acquire()
    second.release()


def as_daemon(lead: Leadership, fn, *args):
    """Call ``fn`` as the daemon of ``lead`` would: under its fence."""
    context = contextvars.copy_context()
    context.run(FENCE.set, lead.fence)
    return context.run(fn, *args)


def test_a_lease_not_renewed_passes_and_the_old_leader_writes_nothing_after(store, tmp_path):
    if store.engines.is_sqlite:
        pytest.skip("SQLite leads by a file lock on one machine: there is no lease to pass")
    old, new = (Leadership(store.engines, tmp_path, lease_s=0.3) for _ in range(2))
    assert old.try_acquire()
    first_token = old.fence.token
    as_daemon(old, store.kv.put_kv, "k", "by the old leader")
    assert not new.try_acquire()  # renewed or not, it lasts lease_s

    # The old leader stops renewing (paused, cut off): the lease passes with the next token.
    wait_until(new.try_acquire, timeout=5, interval=0.05)
    assert new.fence.token == first_token + 1
    with pytest.raises(Fenced):
        as_daemon(old, store.kv.put_kv, "k", "by the old leader, late")
    assert store.kv.get_kv("k") == "by the old leader"
    as_daemon(new, store.kv.put_kv, "k", "by the new leader")
    store.kv.put_kv("api", "any replica's API writes unfenced")
    assert store.kv.get_kv("k") == "by the new leader"

    # Its next renewal tells it; it stands by from then on, and cannot take the lease back.
    assert not old.renew() and not old.held
    assert not old.try_acquire()
    assert new.renew() and new.held
    new.release()
