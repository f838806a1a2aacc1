"""`opentransformer xray analyze` end to end: a DICOM in, JSON, PDF and SR out (read back with
jsonschema, poppler and dcmtk); bad single files; privacy; the medical extra; the default model."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.package_env import package_env
from helpers.xray_files import PATIENT_ID, PATIENT_NAME, write_broken, write_dicom, write_png

pydicom = pytest.importorskip("pydicom")
jsonschema = pytest.importorskip("jsonschema")

from opentransformer.cli import main  # noqa: E402
from opentransformer.medical.report import result_schema  # noqa: E402

tools = pytest.mark.skipif(not (shutil.which("dsrdump") and shutil.which("pdftoppm")),
                           reason="dcmtk and poppler-utils are not installed")


@tools
def test_dicom_in_json_pdf_sr_out(tmp_path, xray_model_dir, capsys):
    from PIL import Image

    source = write_dicom(tmp_path / "in" / "chest.dcm", size=(200, 160), seed=11)
    out = tmp_path / "out"
    assert main(["xray", "analyze", str(source), "-o", str(out), "--model", str(xray_model_dir)]) == 0
    ds = pydicom.dcmread(source)
    base = out / ds.StudyInstanceUID / ds.SeriesInstanceUID / ds.SOPInstanceUID
    record = json.loads(base.with_name(base.name + ".json").read_text())
    jsonschema.validate(record, result_schema())
    assert record["artifacts"] == {"pdf": f"{ds.SOPInstanceUID}.pdf", "sr": f"{ds.SOPInstanceUID}.sr.dcm",
                                   "sc": f"{ds.SOPInstanceUID}.sc.dcm"}
    assert record["prediction"] in capsys.readouterr().out

    sr_path = base.with_name(base.name + ".sr.dcm")
    sr = pydicom.dcmread(sr_path)
    referenced = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert referenced.StudyInstanceUID == ds.StudyInstanceUID
    assert referenced.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID
    assert referenced.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == \
        ds.SOPInstanceUID
    dump = subprocess.run(["dsrdump", "+Pu", str(sr_path)], capture_output=True, text=True)
    assert dump.returncode == 0 and not dump.stderr and ds.SOPInstanceUID in dump.stdout

    pdf = base.with_name(base.name + ".pdf")
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(pdf), str(tmp_path / "page")], check=True)
    page = np.asarray(Image.open(tmp_path / "page.png").convert("L"))
    assert page.std() > 10
    assert sorted(p.name for p in out.iterdir()) == [ds.StudyInstanceUID, "manifest.jsonl", "summary.csv"]


@pytest.mark.parametrize("kind", ["truncated", "no_pixel_data", "not_dicom", "zero_size", "decompression_bomb"])
def test_bad_single_file_one_message_no_output(tmp_path, kind, capsys):
    bad = write_broken(tmp_path / "in")[kind]
    out = tmp_path / "out"
    # the model is never loaded for a file that cannot be read: a missing one proves it
    assert main(["xray", "analyze", str(bad), "-o", str(out), "--model", str(tmp_path / "no-model")]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0], captured.err
    assert "Traceback" not in captured.err and not captured.out
    assert not out.exists()


def test_bad_single_file_in_a_fresh_process(tmp_path):
    bad = write_broken(tmp_path / "in")["truncated"]
    run = subprocess.run([sys.executable, "-m", "opentransformer", "xray", "analyze", str(bad), "-o",
                          str(tmp_path / "out")], capture_output=True, text=True,
                         env=package_env())
    assert run.returncode == 1 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()


@tools
def test_patient_identifiers_reach_no_output_or_log(tmp_path, xray_model_dir):
    inputs = tmp_path / "in"
    write_dicom(inputs / "a.dcm", seed=1)
    write_dicom(inputs / "b.dcm", seed=2)
    write_png(inputs / "c.png")
    (inputs / "bad.dcm").write_bytes(b"")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "opentransformer", "xray", "analyze", str(inputs), "-o", str(out), "--model",
            str(xray_model_dir), "--format", "json,html,pdf,sr"]
    env = package_env()
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    assert run.returncode == 1  # bad.dcm
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".json", ".html", ".pdf", ".dcm", ".csv", ".log", ".jsonl"}
    texts = [run.stdout, run.stderr] + [p.read_bytes().decode("latin-1") for p in files]
    texts += [subprocess.run(["pdftotext", str(p), "-"], capture_output=True, text=True).stdout
              for p in files if p.suffix == ".pdf"]
    for secret in (PATIENT_NAME, PATIENT_NAME.split("^")[0], PATIENT_ID):
        assert not [t for t in texts if secret in t], f"{secret} leaked"

    run = subprocess.run(args + ["--include-phi", "--format", "json,sr"], capture_output=True, text=True, env=env)
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("*.json")]
    assert {r.get("patient", {}).get("PatientName") for r in records if r["dicom"]["sop_instance_uid"]} == \
        {PATIENT_NAME}


def test_help_works_without_the_medical_extra_which_is_then_asked_for(tmp_path):
    blocked = "import sys\nfor m in ('pydicom', 'highdicom', 'reportlab', 'nibabel'): sys.modules[m] = None\n"
    env = package_env()
    run = subprocess.run([sys.executable, "-c", blocked + "from opentransformer.cli import main\n"
                          "sys.exit(main(['xray', 'analyze', '--help']))"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "--operating-point" in run.stdout
    run = subprocess.run([sys.executable, "-c", blocked + "from opentransformer.cli import main\n"
                          f"sys.exit(main(['xray', 'analyze', {str(tmp_path)!r}, '-o', {str(tmp_path / 'o')!r}]))"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "install opentransformer[medical]" in run.stderr
    assert "Traceback" not in run.stderr


def test_default_model_absent_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    pytest.importorskip("opentransformer.medical.analysis")
    monkeypatch.setenv("OPENTRANSFORMER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "1")
    image = write_png(tmp_path / "chest.png")
    assert main(["xray", "analyze", str(image), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "opentransformer download lxyuan/vit-xray-pneumonia-classification" in err
    assert not (tmp_path / "out").exists()


def test_strict_refuses_what_is_otherwise_flagged(tmp_path, xray_model_dir, capsys):
    ct = write_dicom(tmp_path / "ct.dcm", modality="CT", seed=4)
    args = ["xray", "analyze", str(ct), "--model", str(xray_model_dir), "--format", "json"]
    assert main([*args, "-o", str(tmp_path / "lenient")]) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "lenient").rglob("*.json")]
    assert any("not an X-ray modality" in w for w in record["warnings"])
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "strict"), "--strict"]) == 1
    assert "not an X-ray modality" in capsys.readouterr().err
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize("option", [["--batch-size", "0"], ["--operating-point", "1.5"], ["--format", "json,tiff"],
                                    ["--frame", "-1"]])
def test_bad_options_are_one_line_errors(tmp_path, option, capsys):
    image = write_png(tmp_path / "chest.png")
    assert main(["xray", "analyze", str(image), "-o", str(tmp_path / "out"), *option]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
