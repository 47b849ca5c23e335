"""The real ``tp`` CLI (0.0.9) on accounts: the /health gate (keys, versions), ``tp me``, SSH
keys, and the clear refusals of object storage and ``tp ssh``."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from tests.api.dialects.tensorpool.conftest import tp_runner
from tests.api.dialects.tensorpool.test_clusters import fails, fields, found_id, ok, table_row
from tests.api.helpers import submit
from tests.api.test_auth import make_user

HEALTH_BODY = {"package_version": "0.0.9",
               "uname": ["Linux", "host", "6.1", "#1 SMP", "x86_64", ""],
               "python_version": "3.11.7", "python_implementation": "CPython",
               "python_compiler": "GCC 12.2.0", "python_build": ["main", "Jan 1 2024"]}


def ed25519_pub(comment: str = "ann@laptop") -> str:
    """A well-formed OpenSSH ed25519 public key line (random key material)."""
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def test_health_gates_keys_and_old_clients(server, tp_bin):
    url = server.url + "/health"
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.post(url, json=HEALTH_BODY, headers=auth)
    assert r.status_code == 200 and not r.json()["message"]
    assert httpx.post(url, json={**HEALTH_BODY, "package_version": "0.0.10"},
                      headers=auth).status_code == 200
    old = httpx.post(url, json={**HEALTH_BODY, "package_version": "0.0.1"}, headers=auth)
    assert old.status_code == 426
    assert "pip install -U" in old.json()["message"] and "0.0.9" in old.json()["message"]
    bad = httpx.post(url, json=HEALTH_BODY, headers={"Authorization": "Bearer jy_wrong"})
    assert bad.status_code == 401 and bad.json()["message"]
    # the real CLI with a wrong key: refused at its health check, the message printed
    wrong = tp_runner(tp_bin, server, "jy_wrong_key")
    out = fails(wrong("me"), "unknown or revoked API key")
    assert "TENSORPOOL_ENGINE" not in out  # it stopped at the health check
    fails(wrong("cluster", "list"), "unknown or revoked API key")


def test_me_shows_the_real_account(tp_bin, server, api):
    key = make_user(api, "tp-carol", "tp-carol-org")["key"]
    with server.client(key) as carol:
        submit(carol, "true")
    out = ok(tp_runner(tp_bin, server, key)("me"))
    me = fields(out)
    assert (me["User"], me["Organization"], me["Admin"]) == ("tp-carol", "tp-carol-org", "no")
    assert me["Jobs"].startswith("1") and me["SSH keys"] == "0"
    assert me["Active clusters"] == "0" and me["Storage volumes"] == "0"
    assert me["API key"].startswith("k (" + key[:10])
    assert f"TENSORPOOL_ENGINE={server.url}" in out
    assert fields(ok(tp_runner(tp_bin, server)("me")))["Admin"] == "yes"


def test_ssh_keys_add_list_remove(tp, tp_bin, server, api, tmp_path: Path):
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(ed25519_pub() + "\n")
    out = ok(tp("me", "sshkey", "add", str(pub), "--name", "laptop"))
    kid = found_id("key", out)
    fingerprint = next(w for w in out.split() if w.startswith("SHA256:")).rstrip(")")
    if shutil.which("ssh-keygen"):  # the fingerprint is the one ssh-keygen shows
        shown = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True)
        assert shown.stdout.split()[1] == fingerprint

    row = table_row(ok(tp("me", "sshkey", "list")), kid)
    assert row[1:4] == ["laptop", "ssh-ed25519", fingerprint]
    fails(tp("me", "sshkey", "add", str(pub)), "already registered", kid)

    bad = tmp_path / "bad.pub"
    for text, why in (("hello world", "not an OpenSSH public key"),
                      ("ssh-ed25519 !!notbase64!!", "not base64"),
                      ("ssh-rsa " + ed25519_pub().split()[1], "not a ssh-rsa key"),
                      ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE "
                       "KEY-----", "private key")):
        bad.write_text(text)
        fails(tp("me", "sshkey", "add", str(bad)), why)
    r = api.post("/user/ssh-key/add", json={"public_key": "nope"})
    assert r.status_code == 400 and r.json()["message"]

    # a colleague sees it with --org only and cannot remove it; another org never sees it
    mate = tp_runner(tp_bin, server, make_user(api, "tp-ac-bob", "default")["key"])
    assert kid not in ok(mate("me", "sshkey", "list"))
    assert table_row(ok(mate("me", "sshkey", "list", "--org")), kid)[4] == "admin"
    fails(mate("me", "sshkey", "remove", kid), "belongs to another user")
    stranger = tp_runner(tp_bin, server, make_user(api, "tp-ac-eve", "tp-ac-other")["key"])
    assert kid not in ok(stranger("me", "sshkey", "list", "--org"))
    fails(stranger("me", "sshkey", "remove", kid), "not found")

    assert kid in ok(tp("me", "sshkey", "remove", kid))
    assert "No SSH keys" in ok(tp("me", "sshkey", "list"))
    fails(tp("me", "sshkey", "remove", kid), "not found")


def test_object_storage_and_ssh_are_refused_with_a_clear_message(tp, api):
    for args in (("object-storage", "enable"), ("object-storage", "disable"),
                 ("object-storage", "credentials"), ("object-storage", "configure", "rclone"),
                 ("object-storage", "bucket", "list"), ("object-storage", "bucket", "create", "b"),
                 ("object-storage", "bucket", "delete", "b")):
        fails(tp(*args), "Object storage is not offered by this server", "tp storage create")
    fails(tp("ssh", "clu_x-0"), "SSH access is not offered by this server")
    r = api.get("/object-storage/credentials")
    assert r.status_code == 501 and r.json()["error"] == "NOT_SUPPORTED"
    assert api.get("/ssh/abc", params={"system": "Linux"}).status_code == 501
