"""tqdm bars: the parser, the supervisor's log handling of "\\r" and its progress.json."""

from __future__ import annotations

import io
import json
import sys
import uuid
from pathlib import Path

import pytest
from tqdm import tqdm

from jobyard.executors.base import LaunchSpec
from jobyard.executors.local import LocalExecutor
from jobyard.executors.runfiles import PROGRESS_INTERVAL_S, LogWriter, ProgressFile
from jobyard.telemetry.tqdm import could_be, parse

meter = tqdm.format_meter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (meter(450, 1000, 10.4), {"percent": 45.0, "items_done": 450, "items_total": 1000,
                                  "throughput": {"value": 43.27, "unit": "it/s"}, "desc": None,
                                  "elapsed_s": 10.0, "remaining_s": 12.0}),
        (" 45%|████▌     | 450/1000 [00:10<00:12, 43.1it/s]",
         {"percent": 45.0, "items_done": 450, "items_total": 1000,
          "throughput": {"value": 43.1, "unit": "it/s"}, "desc": None,
          "elapsed_s": 10.0, "remaining_s": 12.0}),
        (meter(450, None, 10.4, prefix="scan"),
         {"percent": None, "items_done": 450, "items_total": None,
          "throughput": {"value": 43.27, "unit": "it/s"}, "desc": "scan",
          "elapsed_s": 10.0, "remaining_s": None}),
    ],
)
def test_the_standard_layouts(text, expected):
    assert parse(text) == expected


def test_descriptions_ascii_bars_postfixes_units_and_slow_rates():
    bar = parse(meter(450, 1000, 10.4, ascii=True, ncols=80, prefix="Epoch 1: train",
                      postfix="loss=0.5, acc=0.9", unit="img"))
    assert bar is not None
    assert (bar["desc"], bar["percent"], bar["throughput"]) == (
        "Epoch 1: train", 45.0, {"value": 43.27, "unit": "img/s"})
    slow = parse(meter(3, 1000, 10.4))  # "3.47s/it"
    assert slow["throughput"]["unit"] == "it/s"
    assert slow["throughput"]["value"] == pytest.approx(3 / 10.4, rel=0.01)
    assert slow["remaining_s"] == 57 * 60 + 36
    scaled = parse(meter(4_500_000, 10_000_000, 10.4, unit="B", unit_scale=True))
    assert scaled["items_done"] == 4_500_000 and scaled["items_total"] == 10_000_000
    assert scaled["throughput"] == {"value": 433_000.0, "unit": "B/s"}
    hours = parse(meter(1000, 1000, 3661))
    assert hours["percent"] == 100.0 and hours["elapsed_s"] == 3661


def test_unknown_rates_ansi_codes_and_padding():
    start = parse(meter(0, 1000, 0))
    assert start["percent"] == 0.0 and start["throughput"] is None
    assert start["remaining_s"] is None
    nested = parse("\x1b[A" + meter(5, 10, 1.0) + "   ")
    assert nested["percent"] == 50.0


@pytest.mark.parametrize("text", [
    "", "hello world", "loaded [ok]", "50% done", meter(450, 1000, 10.4, ncols=20),
    "Downloading: 45%", "[00:10<00:12, 43.1it/s]",
])
def test_other_output_is_not_a_bar(text):
    assert parse(text) is None


def test_the_cheap_precheck_lets_bars_through():
    assert could_be(meter(450, 1000, 10.4).encode() + b"  ")
    assert not could_be(b"epoch 3 done")


def test_real_tqdm_output_as_written_to_a_stream():
    out = io.StringIO()
    for _ in tqdm(range(200), file=out, mininterval=0, desc="work"):
        pass
    segments = [s for s in out.getvalue().replace("\n", "\r").split("\r") if s]
    parsed = [parse(s) for s in segments]
    assert all(parsed), segments
    assert parsed[-1]["percent"] == 100.0 and parsed[-1]["desc"] == "work"
    assert parsed[-1]["items_done"] == 200


def log_texts(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(stream, text) for _, stream, text in (x.split("\t", 2) for x in lines)]


def test_the_log_keeps_the_final_state_of_a_rewritten_line(tmp_path):
    log = LogWriter(str(tmp_path / "log"), 1 << 20)
    log.feed("e", b"start\n\r 10%|#| 1/10 [00:01<00:09,  1.00it/s]")
    log.feed("e", b"\r 20%|##| 2/10 [00:02<00:08, ")  # a bar cut across two reads
    log.feed("e", b" 1.00it/s]\r 30%|###| 3/10 [00:03<00:07,  1.00it/s]")
    log.feed("e", b"\r100%|#####| 10/10 [00:10<00:00,  1.00it/s]\n")
    log.feed("o", b"crlf line\r\n")
    log.feed("o", b"split\r")
    log.feed("o", b"\nafter\n")
    log.feed("e", b"\rno newline at the end\rfinal")
    log.close()
    assert log_texts(tmp_path / "log") == [
        ("e", "start"),
        ("e", "100%|#####| 10/10 [00:10<00:00,  1.00it/s]"),
        ("o", "crlf line"),
        ("o", "split"),
        ("o", "after"),
        ("e", "final"),
    ]


def test_progress_json_is_written_throttled_and_at_the_end(tmp_path, monkeypatch):
    written: list[dict] = []
    monkeypatch.setattr("jobyard.executors.runfiles.write_json_atomic",
                        lambda path, data: written.append(data))
    log = LogWriter(str(tmp_path / "log"), 1 << 20)
    progress = ProgressFile(str(tmp_path / "progress.json"))
    now = 100.0
    for i in range(1, 51):  # 50 redraws in 0.5 s
        log.feed("e", ("\r" + meter(i, 50, i / 100)).encode())
        now += 0.01
        progress.update(log, now)
    assert 2 <= len(written) <= 0.5 / PROGRESS_INTERVAL_S + 1
    assert progress.next_at > now and log.bars_changed  # the latest bar is not written yet
    progress.update(log, now, final=True)
    assert written[-1]["percent"] == 100.0 and written[-1]["items_done"] == 50
    assert [w["seq"] for w in written] == list(range(1, len(written) + 1))
    log.feed("o", b"\rdownloading... 3 MB")  # not a bar: nothing more is written
    progress.update(log, now + 1)
    assert not log.bars_changed and written[-1]["items_done"] == 50
    log.close()


async def test_a_job_printing_a_real_tqdm_bar(tmp_path):
    script = ("import time\nfrom tqdm import tqdm\n"
              "for _ in tqdm(range(40), desc='epoch'):\n    time.sleep(0.01)\nprint('done')\n")
    run_dir = tmp_path / "run"
    marker = f"test-{uuid.uuid4().hex}"
    spec = LaunchSpec("job_tqdm", 1, [sys.executable, "-c", script],
                      {"PATH": "/usr/bin:/bin", "JOBYARD_JOB_MARKER": marker}, None,
                      str(run_dir), 1 << 20, 5.0, marker)
    executor = LocalExecutor()
    await executor.start()
    try:
        status = await executor.wait(await executor.launch(spec))
    finally:
        await executor.close()
    assert status.exit_code == 0
    stderr = [text for stream, text in log_texts(run_dir / "log") if stream == "e"]
    assert len(stderr) == 1 and stderr[0].startswith("epoch: 100%|"), stderr
    bar = json.loads((run_dir / "progress.json").read_text())
    assert (bar["percent"], bar["items_done"], bar["items_total"], bar["desc"]) == (
        100.0, 40, 40, "epoch")
    assert bar["throughput"]["unit"] == "it/s" and bar["throughput"]["value"] > 0


def test_the_last_bar_counts_when_its_newline_comes_in_a_later_read(tmp_path, monkeypatch):
    written: list[dict] = []
    monkeypatch.setattr("jobyard.executors.runfiles.write_json_atomic",
                        lambda path, data: written.append(data))
    log = LogWriter(str(tmp_path / "log"), 1 << 20)
    progress = ProgressFile(str(tmp_path / "progress.json"))
    log.feed("e", ("\r" + meter(5, 10, 1.0)).encode())
    progress.update(log, 10.0)
    log.feed("e", ("\r" + meter(10, 10, 2.0)).encode())  # within the interval: held back
    progress.update(log, 10.01)
    log.feed("e", b"\n")  # tqdm's close writes the newline separately
    log.feed("e", b"the job goes on\n")
    progress.update(log, 10.02, final=True)
    assert [w["items_done"] for w in written] == [5, 10]
    log.close()
