"""POST /v1/medical/xray on a live server: a DICOM upload gives the JSON result and links to its
artifacts, which download and read back; bad uploads are 400s with the reason."""
from __future__ import annotations

import io

import httpx
import pytest

from helpers.xray_files import PATIENT_NAME, write_broken, write_dicom

pydicom = pytest.importorskip("pydicom")
jsonschema = pytest.importorskip("jsonschema")

from serve.conftest import start_server, stop_server  # noqa: E402

from opentransformer.medical.report import result_schema  # noqa: E402


@pytest.fixture(scope="module")
def xray_server(xray_model_dir):
    live = start_server(xray_model=str(xray_model_dir), max_body_bytes=16 * 1024 * 1024)
    yield live
    stop_server(live)


def test_dicom_upload_gives_result_and_artifacts(xray_server, tmp_path):
    source = write_dicom(tmp_path / "chest.dcm", size=(128, 96), seed=21)
    r = httpx.post(f"{xray_server.base_url}/v1/medical/xray", timeout=120,
                   files={"file": ("chest.dcm", source.read_bytes(), "application/dicom")},
                   data={"operating_point": "0.3"})
    assert r.status_code == 200, r.text
    body = r.json()
    record = body["result"]
    jsonschema.validate(record, result_schema())
    ds = pydicom.dcmread(source)
    assert record["dicom"]["sop_instance_uid"] == ds.SOPInstanceUID and record["operating_point"] == 0.3
    assert record["positive"] == (record["probabilities"]["PNEUMONIA"] >= 0.3)
    assert PATIENT_NAME not in r.text
    assert set(body["artifacts"]) == {"json", "html", "pdf", "sr", "sc"}
    got = {kind: httpx.get(f"{xray_server.base_url}{url}", timeout=60) for kind, url in body["artifacts"].items()}
    assert all(g.status_code == 200 for g in got.values())
    assert got["pdf"].content.startswith(b"%PDF") and got["pdf"].headers["content-type"] == "application/pdf"
    assert got["json"].json()["input"]["sha256"] == record["input"]["sha256"]
    sr = pydicom.dcmread(io.BytesIO(got["sr"].content))
    assert sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0] \
        .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert pydicom.dcmread(io.BytesIO(got["sc"].content)).StudyInstanceUID == ds.StudyInstanceUID


@pytest.mark.parametrize("kind", ["truncated", "no_pixel_data", "not_dicom", "zero_size", "decompression_bomb"])
def test_bad_uploads_are_400_with_the_reason(xray_server, tmp_path, kind):
    bad = write_broken(tmp_path)[kind]
    r = httpx.post(f"{xray_server.base_url}/v1/medical/xray", files={"file": (bad.name, bad.read_bytes())},
                   timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "file" and r.json()["error"]["message"]


def test_requests_without_a_file_and_unknown_artifacts(xray_server):
    url = f"{xray_server.base_url}/v1/medical/xray"
    assert httpx.post(url, json={"file": "x"}, timeout=30).status_code == 400
    assert httpx.post(url, files={"other": ("a", b"1")}, timeout=30).status_code == 400
    assert httpx.post(url, files={"file": ("a", b"1")}, data={"operating_point": "2"}, timeout=30).status_code == 400
    assert httpx.get(f"{url}/{'0' * 32}/result.pdf", timeout=30).status_code == 404
    assert httpx.get(f"{url}/{'0' * 32}/..%2Fpasswd", timeout=30).status_code == 404
