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


def test_a_link_with_non_ascii_or_a_malformed_mac_is_refused_not_a_crash():
    token = signed_link(SECRET, "file", ("job_a",), expires=1000)
    payload, mac = token.split(".")
    for bad in (f"{payload}.{'é' * 40}", f"{payload}.{mac[:-1]}é", f"{payload}.{mac.upper()}",
                f"é{payload}.{mac}", f"{payload}.{mac}0", f"{payload}.", "é.é", "\x00.\x00"):
        assert read_link(SECRET, "file", bad, now=0) is None


def test_a_job_token_with_non_ascii_or_odd_parts_is_refused_not_a_crash():
    from jobyard.core.tokens import job_token, parse_job_token

    token = job_token(SECRET, "job_abc", 2)
    assert parse_job_token(SECRET, token) == ("job_abc", 2)
    body, mac = token.rsplit(".", 1)
    for bad in (f"{body}.{'é' * 40}", f"{body}.{mac[:-1]}²", token.replace(".2.", ".²."),
                token.replace(".2.", ".٢."), token.replace(".2.", ".99999999999."),
                "jyt_é", "jyt_", "jyt_..", token + "\x00"):
        assert parse_job_token(SECRET, bad) is None
