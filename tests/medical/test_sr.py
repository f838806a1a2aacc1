"""The Comprehensive SR and the overlay Secondary Capture, read back with pydicom and dcmtk."""
from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest

from helpers.xray_files import PATIENT_ID, PATIENT_NAME, write_dicom, write_png

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from opentransformer.errors import InvalidRequestError  # noqa: E402
from opentransformer.medical.artifacts import parse_formats, render_artifacts  # noqa: E402
from opentransformer.medical.dicom_sr import overlay_secondary_capture, structured_report  # noqa: E402

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
needs_dcmtk = pytest.mark.skipif(shutil.which("dsrdump") is None, reason="dcmtk (dsrdump) not installed")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, xray_model_dir):
    from opentransformer.medical.analysis import analyze

    path = write_dicom(tmp_path_factory.mktemp("sr") / "chest.dcm", size=(96, 128), seed=5)
    return pydicom.dcmread(path), analyze(path, model=str(xray_model_dir))


def test_sr_references_the_source_and_is_unverified(analysed):
    source, result = analysed
    sr = pydicom.dcmread(io.BytesIO(structured_report(result)))
    assert sr.SOPClassUID == COMPREHENSIVE_SR and sr.Modality == "SR"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == ("PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID and sr.SOPInstanceUID != source.SOPInstanceUID
    (study,) = sr.CurrentRequestedProcedureEvidenceSequence
    (series,) = study.ReferencedSeriesSequence
    (instance,) = series.ReferencedSOPSequence
    assert (study.StudyInstanceUID, series.SeriesInstanceUID) == (source.StudyInstanceUID, source.SeriesInstanceUID)
    assert (instance.ReferencedSOPClassUID, instance.ReferencedSOPInstanceUID) == (source.SOPClassUID,
                                                                                   source.SOPInstanceUID)


def _content_values(dataset) -> list:
    """Every (concept name, value) in an SR content tree, walked with pydicom only."""
    found = []
    for item in dataset.get("ContentSequence", []):
        name = item.ConceptNameCodeSequence[0].CodeMeaning
        if item.ValueType == "NUM":
            found.append((name, float(item.MeasuredValueSequence[0].NumericValue)))
        elif item.ValueType == "CODE":
            found.append((name, item.ConceptCodeSequence[0].CodeMeaning))
        elif item.ValueType == "IMAGE":
            found.append((name, item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))
        found.extend(_content_values(item))
    return found


def test_sr_content_carries_probabilities_and_the_finding(analysed):
    source, result = analysed
    values = _content_values(pydicom.dcmread(io.BytesIO(structured_report(result))))
    for label, p in result.probabilities.items():
        assert (f"Probability of {label}", pytest.approx(p, abs=1e-6)) in values
    assert ("Pneumonia", "Present" if result.positive else "Absent") in values
    assert ("Source of Measurement", source.SOPInstanceUID) in values


@needs_dcmtk
def test_dsrdump_reads_the_sr(analysed, tmp_path):
    source, result = analysed
    path = tmp_path / "result.sr.dcm"
    path.write_bytes(structured_report(result))
    run = subprocess.run(["dsrdump", "+Pu", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Comprehensive SR Document" in run.stdout
    assert "Completion Flag     : PARTIAL" in run.stdout and "Verification Flag   : UNVERIFIED" in run.stdout
    assert source.SOPInstanceUID in run.stdout
    assert "error" not in run.stderr.lower()


def test_secondary_capture_holds_the_overlay_in_the_study(analysed, tmp_path):
    source, result = analysed
    sc = pydicom.dcmread(io.BytesIO(overlay_secondary_capture(result)))
    assert sc.SOPClassUID == SECONDARY_CAPTURE and sc.PhotometricInterpretation == "RGB"
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert np.array_equal(sc.pixel_array, result.overlay)
    if shutil.which("dcm2pnm"):
        path = tmp_path / "sc.dcm"
        path.write_bytes(overlay_secondary_capture(result))
        subprocess.run(["dcm2pnm", "--write-png", str(path), str(tmp_path / "sc.png")], check=True)
        from PIL import Image

        assert np.array_equal(np.asarray(Image.open(tmp_path / "sc.png")), result.overlay)


def test_derived_instances_carry_patient_identity_only_when_asked(analysed):
    _, result = analysed
    for build in (structured_report, overlay_secondary_capture):
        plain = build(result)
        assert PATIENT_NAME.encode() not in plain and PATIENT_ID.encode() not in plain
        ds = pydicom.dcmread(io.BytesIO(build(result, include_phi=True)))
        assert (str(ds.PatientName), ds.PatientID) == (PATIENT_NAME, PATIENT_ID)


def test_non_dicom_input_gets_no_sr(tmp_path, xray_model_dir):
    from opentransformer.medical.analysis import analyze

    result = analyze(write_png(tmp_path / "chest.png"), model=str(xray_model_dir))
    with pytest.raises(InvalidRequestError, match="DICOM input"):
        structured_report(result)
    rendered = render_artifacts(result, tmp_path / "out" / "chest", parse_formats("json,sr"))
    assert set(rendered.paths) == {"json"} and "not DICOM" in rendered.notes[0]
