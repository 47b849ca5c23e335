"""Keys, users, orgs and who may see what."""

import httpx

from tests.api.helpers import submit


def make_user(api, username, org):
    orgs = {o["name"] for o in api.get("/v1/orgs").json()["items"]}
    if org not in orgs:
        assert api.post("/v1/orgs", json={"name": org}).status_code == 201
    r = api.post("/v1/users", json={"username": username, "org": org})
    assert r.status_code == 201, r.text
    key = api.post("/v1/keys", json={"name": "k", "username": username})
    assert key.status_code == 201
    return key.json()


def test_missing_bad_and_revoked_keys_get_401(api, server):
    assert httpx.get(server.url + "/v1/jobs").status_code == 401
    bad = httpx.get(server.url + "/v1/jobs", headers={"Authorization": "Bearer jy_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "UNAUTHORIZED"
    key = make_user(api, "rita", "acme")
    assert key["key"].startswith("jy_") and key["prefix"] == key["key"][:10]
    listed = api.get("/v1/keys", params={"username": "rita"}).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]
    with server.client(key["key"]) as rita:
        assert rita.get("/v1/me").json()["username"] == "rita"
        assert api.delete(f"/v1/keys/{key['id']}").status_code == 200
        assert rita.get("/v1/me").status_code == 401  # effective on the next request


def test_other_orgs_see_404_and_non_admins_cannot_administer(api, server):
    ann = make_user(api, "ann", "team-a")
    bob = make_user(api, "bob", "team-b")
    cid = make_user(api, "cid", "team-a")
    with server.client(ann["key"]) as a, server.client(bob["key"]) as b, \
            server.client(cid["key"]) as c:
        job = submit(a, "true", name="private")
        for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['number']}",
                     f"/v1/jobs/{job['id']}/logs"):
            r = b.get(path)
            assert r.status_code == 404 and "private" not in r.text
        assert b.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        assert job["id"] not in [j["id"] for j in b.get("/v1/jobs").json()["items"]]
        assert c.get(f"/v1/jobs/{job['id']}").status_code == 200  # same org
        assert b.post("/v1/orgs", json={"name": "evil"}).status_code == 403
        assert b.post("/v1/keys", json={"username": "ann"}).status_code == 403
        own = b.post("/v1/keys", json={"name": "second"})
        assert own.status_code == 201
        assert b.delete(f"/v1/keys/{ann['id']}").status_code == 404
    assert api.post("/v1/users", json={"username": "ann", "org": "team-a"}).status_code == 409
    assert api.post("/v1/users", json={"username": "zed", "org": "nope"}).status_code == 422
