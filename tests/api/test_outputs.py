"""Outputs: collected when a job ends, listed, downloadable with Range, never outside."""

from tests.api.helpers import scratch, submit, wait_state

WRITES = (
    'cd "$JOBYARD_OUTPUT_DIR" && printf \'{"a":1}\\n{"a":2}\\n{"a":3}\\n\' > results.jsonl'
    " && mkdir -p sub && head -c 1000 /dev/zero > sub/model.bin"
    " && ln -s /etc/passwd leak.txt && printf 'x\\ny' > notes.txt"
)


def test_outputs_are_collected_listed_and_downloadable(api):
    job = submit(api, WRITES)
    assert wait_state(api, job["id"])["state"] == "completed"
    items = api.get(f"/v1/jobs/{job['id']}/outputs").json()["items"]
    by_name = {i["name"]: i for i in items}
    assert set(by_name) == {"results.jsonl", "sub/model.bin", "notes.txt"}  # no symlink
    assert by_name["results.jsonl"]["records"] == 3 and by_name["results.jsonl"]["size"] == 24
    assert by_name["notes.txt"]["records"] == 2  # a last line without a newline counts
    assert by_name["sub/model.bin"] == {**by_name["sub/model.bin"], "size": 1000, "records": None}
    assert not any(i["partial"] for i in items)
    whole = api.get(by_name["results.jsonl"]["url"])
    assert whole.status_code == 200 and whole.content.count(b"\n") == 3
    part = api.get(by_name["sub/model.bin"]["url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and len(part.content) == 10
    assert part.headers["content-range"] == "bytes 10-19/1000"
    final = api.get(f"/v1/jobs/{job['id']}").json()
    assert final["substate"] is None


def test_escapes_and_unknown_names_are_refused(api):
    job = submit(api, 'echo secret-log-line; touch "$JOBYARD_OUTPUT_DIR/ok.txt"')
    wait_state(api, job["id"])
    base = f"/v1/jobs/{job['id']}/outputs/"
    for name in ("%2E%2E%2Flog", "..%2Flog", "%2Fetc%2Fpasswd", "leak.txt", "nope"):
        r = api.get(base + name)
        assert r.status_code in (404, 422), (name, r.status_code)
        assert b"secret-log-line" not in r.content and b"root:" not in r.content
    assert api.get(base + "ok.txt").status_code == 200


def test_a_failed_job_lists_partial_results(api):
    job = submit(api, 'echo half > "$JOBYARD_OUTPUT_DIR/part-0.txt"; exit 4')
    assert wait_state(api, job["id"])["state"] == "error"
    [item] = api.get(f"/v1/jobs/{job['id']}/outputs").json()["items"]
    assert item["name"] == "part-0.txt" and item["partial"] is True and item["records"] == 1


def test_output_patterns_keep_files_from_the_working_directory(api, tmp_path):
    work = scratch(tmp_path)
    job = submit(api, "mkdir -p ckpt && echo 1 > ckpt/a.pt && echo m > model_7.bin"
                      " && echo no > other.txt && exit 2",
                 workdir=str(work), outputs=["ckpt/", "model_*.bin"])
    assert wait_state(api, job["id"])["state"] == "error"
    items = api.get(f"/v1/jobs/{job['id']}/outputs").json()["items"]
    assert sorted(i["name"] for i in items) == ["ckpt/a.pt", "model_7.bin"]
    assert all(i["partial"] for i in items)  # the job failed: partial results
    assert api.get(next(i["url"] for i in items if i["name"] == "model_7.bin")).text == "m\n"
    refused = api.post("/v1/jobs", json={"command": "true", "outputs": ["../x"]})
    assert refused.status_code == 422 and "outputs" in str(refused.json())
