import threading

import pytest
import sqlalchemy as sa

from jobyard.store.engine import make_engines


@pytest.fixture
def engines(tmp_path):
    engines = make_engines(f"sqlite:///{tmp_path / 'gc.db'}")
    with engines.write.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER UNIQUE)")
    yield engines
    engines.dispose()


def count(engines) -> int:
    with engines.read.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one()


def test_a_failing_write_undoes_only_itself(engines):
    def insert(v):
        return lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": v})

    def half_then_fail(conn):
        conn.execute(sa.text("INSERT INTO t VALUES (100)"))
        raise ValueError("boom")

    errors, barrier = [], threading.Barrier(20)

    def worker(i):
        barrier.wait()
        try:
            engines.write_tx(half_then_fail if i == 7 else insert(i))
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(errors) == 1 and count(engines) == 19  # value 100 was rolled back with its writer
    with pytest.raises(sa.exc.IntegrityError):
        engines.write_tx(insert(3))  # a constraint error reaches its caller
    assert engines.write_tx(lambda conn: 42) == 42 and count(engines) == 19
