from jobyard.daemon.leader import Leadership


def test_only_one_daemon_leads_until_it_lets_go(engines, tmp_path):
    first, second = Leadership(engines, tmp_path), Leadership(engines, tmp_path)
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    assert not first.try_acquire()
    second.release()
