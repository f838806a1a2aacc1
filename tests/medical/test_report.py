"""The JSON record against its shipped JSON Schema, and the HTML and PDF reports read back with
independent tools: jsonschema, pydicom, hashlib, poppler (pdftoppm, pdftotext), Pillow."""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from helpers.xray_files import PATIENT_ID, PATIENT_NAME, write_dicom

pydicom = pytest.importorskip("pydicom")
jsonschema = pytest.importorskip("jsonschema")

from opentransformer.medical.report import (NOTICE, SCHEMA_VERSION, record_json, report_html,  # noqa: E402
                                            report_pdf, result_record, result_schema)


@pytest.fixture(scope="module")
def dicom_result(tmp_path_factory, xray_model_dir):
    from opentransformer.medical.analysis import analyze

    path = write_dicom(tmp_path_factory.mktemp("report") / "chest.dcm", size=(320, 256))
    return path, analyze(path, model=str(xray_model_dir))


def validate(record: dict) -> None:
    validator = jsonschema.Draft202012Validator(result_schema(), format_checker=jsonschema.FormatChecker())
    validator.validate(record)


def test_record_validates_and_matches_the_source(dicom_result):
    import json

    path, result = dicom_result
    record = json.loads(record_json(result_record(result)))
    validate(record)
    assert record["schema_version"] == SCHEMA_VERSION and record["notice"] == NOTICE
    assert record["input"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    ds = pydicom.dcmread(path)
    assert record["dicom"]["study_instance_uid"] == ds.StudyInstanceUID
    assert record["dicom"]["series_instance_uid"] == ds.SeriesInstanceUID
    assert record["dicom"]["sop_instance_uid"] == ds.SOPInstanceUID
    assert (record["input"]["height"], record["input"]["width"]) == (ds.Rows, ds.Columns)
    assert set(record["probabilities"]) == {"NORMAL", "PNEUMONIA"}
    assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-6)
    assert record["confidence"] == pytest.approx(record["probabilities"][record["prediction"]])
    assert record["positive_label"] == "PNEUMONIA"
    assert record["positive"] == (record["probabilities"]["PNEUMONIA"] >= record["operating_point"])
    assert re.fullmatch(r"[0-9a-f]{64}", record["model"]["weights_sha256"])
    assert "patient" not in record


@pytest.mark.parametrize("breakage", ["missing sha256", "extra field", "bad uid", "wrong version"])
def test_schema_refuses_broken_records(dicom_result, breakage):
    record = result_record(dicom_result[1])
    if breakage == "missing sha256":
        del record["input"]["sha256"]
    elif breakage == "extra field":
        record["patient_name"] = "x"
    elif breakage == "bad uid":
        record["dicom"]["study_instance_uid"] = "1.2.abc"
    else:
        record["schema_version"] = "2.0"
    with pytest.raises(jsonschema.ValidationError):
        validate(record)


def test_phi_only_when_asked(dicom_result):
    _, result = dicom_result
    plain = result_record(result)
    for blob in (record_json(plain), report_html(result, plain)):
        assert PATIENT_NAME.encode() not in blob and PATIENT_ID.encode() not in blob
    with_phi = result_record(result, include_phi=True)
    validate(with_phi)
    assert with_phi["patient"]["PatientName"] == PATIENT_NAME
    assert PATIENT_ID.encode() in report_html(result, with_phi)


def test_html_embeds_both_images_and_the_notice(dicom_result):
    import io

    _, result = dicom_result
    page = report_html(result, result_record(result)).decode()
    assert page.count(NOTICE) == 2
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    rendered, overlay = (Image.open(io.BytesIO(base64.b64decode(b))) for b in images)
    assert rendered.size == overlay.size == (256, 320)  # small images are not enlarged
    assert np.array_equal(np.asarray(overlay), result.overlay)


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                    reason="poppler-utils (pdftoppm, pdftotext) not installed")
def test_pdf_renders_to_a_non_blank_page_with_the_findings(dicom_result, tmp_path):
    _, result = dicom_result
    record = result_record(result)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report_pdf(result, record))
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True)
    page = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"))
    assert page.std() > 10 and (page < 128).mean() > 0.02  # text and two images, not a white page
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "Research use only" in text and "not for diagnostic use" in text
    assert record["dicom"]["sop_instance_uid"] in text
    assert f'{record["probabilities"]["PNEUMONIA"]:.2%}' in text
    assert PATIENT_NAME.split("^")[0] not in text
