"""Code the server sends for the ``tp`` CLI to run on the user's machine during ``tp job push``.

Standard library only, Python 3.8+: it runs under whatever ``python3`` the user has. The server
embeds this file's source in each command (see ``upload.command``); the first argument picks
the step, the second is its parameters as base64 JSON:

``start``
    starts :func:`pack` in a detached background process and prints where it writes;
``pack``
    (background) tars the current directory, minus the ``ignore`` patterns and symbolic
    links, into a gzip archive, recording its progress in ``<archive>.state``;
``send``
    waits briefly for packed bytes, PUTs the next piece to the server's signed upload URL and
    prints what it did; once all is sent it deletes the archive.

Every command returns within a few seconds, so the CLI, which cannot answer WebSocket pings
while a command runs, is never cut off however large the project is. Output is one line of
ASCII JSON (the CLI reads command output one byte at a time).
"""

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

FLUSH_EVERY = 1 << 20


def _params(arg):
    return json.loads(base64.b64decode(arg).decode())


def _put_state(path, **state):
    tmp = path + ".state.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path + ".state")


def _read_state(path):
    try:
        with open(path + ".state") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def ignored(rel, is_dir, patterns):
    """gitignore-like: a pattern matches the name or the relative path; ``x/`` only dirs."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pat = pattern.strip().rstrip("/")
        pat = pat[2:] if pat.startswith("./") else pat
        if dir_only and not is_dir:
            continue
        if fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(rel, pat):
            return True
    return False


def project_files(root, patterns):
    """Relative paths of the regular files to upload (no links, nothing ignored)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d for d in dirnames
            if not os.path.islink(os.path.join(dirpath, d))
            and not ignored(rel_dir + d, True, patterns))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            if not ignored(rel_dir + name, False, patterns):
                found.append(rel_dir + name)
    return found


class _Counting:
    """A file wrapper that hashes what is written and publishes the flushed size."""

    def __init__(self, f, path, total, count):
        self.f, self.path, self.total, self.count = f, path, total, count
        self.size = self.published = 0
        self.sha = hashlib.sha256()

    def write(self, data):
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)
        if self.size - self.published >= FLUSH_EVERY:
            self.f.flush()
            self.published = self.size
            _put_state(self.path, size=self.size, total=self.total, files=self.count)
        return len(data)

    def flush(self):
        self.f.flush()


def pack(path, params):
    try:
        files = project_files(".", params["ignore"])
        total = sum(os.path.getsize(f) for f in files)
        if total > params["max_bytes"]:
            _put_state(path, error=f"the project is {total} bytes, more than this server "
                       f"accepts ({params['max_bytes']}); add large files to 'ignore'")
            return
        _put_state(path, size=0, total=total, files=len(files))
        with open(path, "wb") as raw:
            out = _Counting(raw, path, total, len(files))
            with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1,
                              format=tarfile.PAX_FORMAT) as tar:
                for rel in files:
                    tar.add(rel, arcname=rel, recursive=False)
            raw.flush()
        _put_state(path, size=out.size, total=total, files=len(files), done=True,
                   sha256=out.sha.hexdigest())
    except Exception as exc:  # reported to the server by the next ``send``
        _put_state(path, error=f"packing failed: {exc}")


def start(params):
    fd, path = tempfile.mkstemp(prefix="jobyard-push-", suffix=".tar.gz")
    os.close(fd)
    code = globals().get("_SRC")
    kw = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
          "stderr": subprocess.DEVNULL}
    if os.name == "nt":
        kw["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | NEW_PROCESS_GROUP
    else:
        kw["start_new_session"] = True
    arg = base64.b64encode(json.dumps(params).encode()).decode()
    subprocess.Popen([sys.executable, "-c", f"_SRC={code!r}\nexec(_SRC)", "pack", path, arg],
                     **kw)
    print(json.dumps({"path": path, "name": os.path.basename(os.getcwd())}))


def send(params):
    path, offset, most = params["path"], params["offset"], params["max"]
    deadline = time.time() + params["wait"]
    while True:
        state = _read_state(path)
        if state.get("error"):
            print(json.dumps({"error": state["error"]}))
            return
        ready = state.get("size", 0)
        if state.get("done") or ready - offset >= most or time.time() > deadline:
            break
        time.sleep(0.05)
    n = max(0, min(ready - offset, most))
    if n:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(n)
        req = urllib.request.Request(
            f"{params['url']}?offset={offset}", data=data, method="PUT",
            headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=120).read()
    done = bool(state.get("done")) and offset + n == ready
    if done:
        for leftover in (path, path + ".state"):
            with contextlib.suppress(OSError):
                os.remove(leftover)
    print(json.dumps({"sent": n, "packed": ready, "total": state.get("total"),
                      "files": state.get("files"), "done": done,
                      "sha256": state.get("sha256") if done else None}))


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "pack":
        pack(sys.argv[2], _params(sys.argv[3]))
    elif step == "start":
        start(_params(sys.argv[2]))
    elif step == "send":
        send(_params(sys.argv[2]))
