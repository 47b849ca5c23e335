import os

from jobyard.daemon.plugins.outputs import gather


def test_patterns_bring_files_dirs_and_globs_but_nothing_outside(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "ckpt" / "sub").mkdir(parents=True)
    out.mkdir()
    (work / "model_1.pt").write_text("1")
    (work / "model_2.pt").write_text("2")
    (work / "other.pt").write_text("o")
    (work / "ckpt" / "a.bin").write_text("a")
    (work / "ckpt" / "sub" / "b.bin").write_text("b")
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    os.symlink(secret, work / "ckpt" / "link.txt")
    os.symlink(tmp_path, work / "up")

    n = gather(work, ["model_*.pt", "ckpt/", "up/secret.txt", "missing.txt", "../secret.txt",
                      "/etc/passwd"], out)
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["ckpt/a.bin", "ckpt/sub/b.bin", "model_1.pt", "model_2.pt"]
    assert n == 4
    assert gather(work, ["model_1.pt"], out) == 0  # already there: not brought twice
