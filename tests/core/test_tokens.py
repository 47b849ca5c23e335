from jobyard.core.tokens import read_link, signed_link

SECRET = b"s" * 32


def test_a_link_carries_its_parts_until_it_expires():
    token = signed_link(SECRET, "file", ("job_a", "1", "out/x.txt"), expires=1000)
    assert read_link(SECRET, "file", token, now=999) == ("job_a", "1", "out/x.txt")
    assert read_link(SECRET, "file", token, now=1001) is None


def test_a_link_is_refused_when_tampered_replayed_or_signed_by_another():
    token = signed_link(SECRET, "file", ("job_a",), expires=1000)
    payload, mac = token.split(".")
    assert read_link(SECRET, "upload", token, now=0) is None  # another purpose
    assert read_link(b"x" * 32, "file", token, now=0) is None
    forged = signed_link(b"x" * 32, "file", ("job_b",), expires=1000).split(".")[0]
    assert read_link(SECRET, "file", f"{forged}.{mac}", now=0) is None
    assert read_link(SECRET, "file", payload, now=0) is None
    assert read_link(SECRET, "file", "garbage", now=0) is None
