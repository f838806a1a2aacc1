"""Batch runs: 200 files with 5 broken ones, interrupted and resumed; grouping by study and series;
atomic writes."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.package_env import package_env
from helpers.xray_files import write_broken, write_dicom, write_png

pydicom = pytest.importorskip("pydicom")

from opentransformer.medical.atomic import write_atomic  # noqa: E402
from opentransformer.medical.batch import MANIFEST, SUMMARY, group_files  # noqa: E402

STUDIES = [f"1.2.826.0.1.3680043.10.511.77.{i}" for i in range(3)]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "opentransformer", "xray", "analyze", *args]


def _env() -> dict[str, str]:
    return package_env(OPENTRANSFORMER_OFFLINE="1")


def _manifest_entries(outdir: Path) -> list[dict]:
    entries = []
    for line in (outdir / MANIFEST).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return entries


def test_200_files_5_broken_interrupted_then_resumed(tmp_path, xray_model_dir):
    inputs = tmp_path / "inputs"
    for i in range(150):  # 3 studies x 2 series x 25 instances, tiny images: the model's cost is per image
        study = STUDIES[i % 3]
        write_dicom(inputs / f"study{i % 3}" / f"im{i:03d}.dcm", seed=i, size=(32, 40), study_uid=study,
                    series_uid=f"{study}.{i % 2 + 1}")
    for i in range(45):
        write_png(inputs / "png" / f"film{i:02d}.png", seed=1000 + i, size=(40, 32))
    broken = write_broken(inputs / "broken")
    outdir = tmp_path / "out"
    common = [str(inputs), "-o", str(outdir), "--model", str(xray_model_dir), "--format", "json",
              "--batch-size", "16"]

    started = time.monotonic()
    first = subprocess.Popen(_cli(*common), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while first.poll() is None and (not (outdir / MANIFEST).exists() or len(_manifest_entries(outdir)) < 40):
        assert time.monotonic() - started < 300, "the first run made no progress"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 130, first_err
    assert "Traceback" not in first_err
    finished = {e["key"]: e for e in _manifest_entries(outdir) if e["status"] == "ok"}
    assert 40 <= len(finished) < 195
    before = {key: os.stat(outdir / e["outputs"]["json"]) for key, e in finished.items()}
    assert not list(outdir.rglob("*.part")), "an interrupted write left a temporary file"

    second = subprocess.run(_cli(*common, "--resume"), env=_env(), capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert second.returncode == 1, second.stderr  # files failed
    assert "Traceback" not in second.stderr
    assert f"195 analysed ({len(finished)} from an earlier run), 5 failed" in second.stdout

    entries = _manifest_entries(outdir)
    ok_keys = [e["key"] for e in entries if e["status"] == "ok"]
    assert len(ok_keys) == len(set(ok_keys)) == 195, "a finished file was analysed twice"
    for key, st in before.items():
        now = os.stat(outdir / finished[key]["outputs"]["json"])
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), "a finished file was rewritten"

    rows = list(csv.DictReader((outdir / SUMMARY).open()))
    assert len(rows) == 200
    failed = {Path(r["file"]).name: r["error"] for r in rows if r["status"] == "failed"}
    assert failed.keys() == {p.name for p in broken.values()}
    assert "truncated" in failed["truncated.dcm"] and "no pixel data" in failed["no_pixels.dcm"]
    assert "empty" in failed["empty.dcm"] and "not a DICOM" in failed["notes.dcm"]
    assert "over the limit" in failed["bomb.png"]
    log = (outdir / "xray.log").read_text()
    for name in failed:
        assert f"{name}: " in log  # logged with its reason
    results = list(outdir.rglob("*.json"))
    assert len(results) == 195
    # DICOM results are filed as a PACS files them: study / series / instance
    one = next(r for r in rows if r["status"] == "ok" and r["file"].endswith(".dcm"))
    ds = pydicom.dcmread(one["file"])
    assert (outdir / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.json").is_file()
    print(f"200 files (195 analysed, 5 failed) in {elapsed:.1f} s over two runs")


def test_dicom_is_grouped_by_study_and_series(tmp_path):
    files = []
    for i in range(8):  # interleaved on disk: studies alternate, instance numbers descend
        path = write_dicom(tmp_path / f"f{i}.dcm", seed=i, size=(8, 8), study_uid=STUDIES[i % 2],
                           series_uid=f"{STUDIES[i % 2]}.{i % 4 // 2 + 1}")
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = 10 - i
        ds.save_as(path)
        files.append(path)
    png = write_png(tmp_path / "a.png")
    ordered = group_files([png] + files)
    keys = [(str(d.StudyInstanceUID), str(d.SeriesInstanceUID), int(d.InstanceNumber))
            for d in (pydicom.dcmread(p) for p in ordered[:-1])]
    assert keys == sorted(keys) and ordered[-1] == png


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
