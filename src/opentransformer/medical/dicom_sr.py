"""Results back into the PACS: a Comprehensive SR (TID 1500 measurement report) that references the
source instance, marked partial and unverified, and the heatmap overlay as a Secondary Capture in
the source's study. Both built with highdicom."""
from __future__ import annotations

import io

from ..errors import InvalidRequestError

MANUFACTURER = "OPENtransformer"
SR_SERIES_NUMBER = 9001  # high numbers keep derived series after the acquired ones in PACS viewers
SC_SERIES_NUMBER = 9002
PRIVATE_SCHEME = "99OPENTRANSF"  # codes of our own, for labels with no standard concept (SH: 16 characters)

# Patient and study attributes highdicom copies from the evidence into derived instances; carried
# over only when a run includes PHI, else left empty (Type 2: present, no value).
IDENTIFYING_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                          "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")
_IDENTITY_ATTRIBUTES = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Modality")


def _evidence(source, include_phi: bool):
    """The source instance as evidence: its UIDs, with its patient and study attributes only when
    asked, so derived instances carry no identifiers by default."""
    from pydicom import Dataset

    missing = [k for k in _IDENTITY_ATTRIBUTES[:4] if not source.get(k)]
    if missing:
        raise InvalidRequestError(f"the source DICOM lacks {', '.join(missing)}: cannot reference it from an SR")
    ds = Dataset()
    for keyword in _IDENTITY_ATTRIBUTES:
        setattr(ds, keyword, source.get(keyword, ""))
    for keyword in IDENTIFYING_ATTRIBUTES:
        setattr(ds, keyword, source.get(keyword, "") if include_phi else "")
    if include_phi and "SpecificCharacterSet" in source:
        ds.SpecificCharacterSet = source.SpecificCharacterSet
    return ds


def _label_code(label: str):
    from highdicom.sr import CodedConcept

    if label.upper() == "PNEUMONIA":
        return CodedConcept("233604007", "SCT", "Pneumonia")
    return CodedConcept(label.upper()[:16], PRIVATE_SCHEME, label)


def _dataset_bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _require_dicom(result):
    if result.image.dataset is None:
        raise InvalidRequestError("an SR and a Secondary Capture need a DICOM input to reference; "
                                  f"this input is {result.image.kind}")
    return result.image.dataset


def structured_report(result, *, include_phi: bool = False) -> bytes:
    """A Comprehensive SR: see _build_structured_report."""
    return _built("an SR", _build_structured_report, result, include_phi)


def overlay_secondary_capture(result, *, include_phi: bool = False) -> bytes:
    """The attention overlay (RGB) as a Secondary Capture Image in the source's study."""
    return _built("a Secondary Capture", _build_secondary_capture, result, include_phi)


def _built(what: str, build, result, include_phi: bool) -> bytes:
    # highdicom validates what it is given and says what is wrong with ValueError or TypeError; for
    # us that is a source file whose attributes cannot be carried into a derived instance
    try:
        return build(result, include_phi)
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(f"cannot build {what} from this file: {exc}") from None


def _build_structured_report(result, include_phi: bool) -> bytes:
    """A Comprehensive SR: per label its probability, the finding as present or absent at the
    operating point, the algorithm (model name, weights hash, operating point), the source image."""
    import highdicom as hd
    from highdicom.sr import (AlgorithmIdentification, CodedConcept, ComprehensiveSR,
                              DeviceObserverIdentifyingAttributes, Measurement, MeasurementReport,
                              MeasurementsAndQualitativeEvaluations, ObservationContext, ObserverContext,
                              QualitativeEvaluation, SourceImageForMeasurementGroup, TrackingIdentifier)
    from pydicom.sr.codedict import codes

    from .. import __version__

    evidence = _evidence(_require_dicom(result), include_phi)
    algorithm = AlgorithmIdentification(
        name=result.model.name, version=__version__,
        parameters=[f"weights_sha256={result.model.weights_sha256}",
                    f"operating_point={result.operating_point:g}"])
    measurements = [Measurement(name=CodedConcept(f"P-{i}", PRIVATE_SCHEME, f"Probability of {label}"),
                                value=round(float(p), 6), unit=CodedConcept("1", "UCUM", "no units"))
                    for i, (label, p) in enumerate(result.probabilities.items())]
    present = CodedConcept("52101004", "SCT", "Present")
    absent = CodedConcept("2667000", "SCT", "Absent")
    evaluations = [QualitativeEvaluation(name=_label_code(result.positive_label),
                                         value=present if result.positive else absent)]
    group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier="chest X-ray classification"),
        algorithm_id=algorithm, measurements=measurements, qualitative_evaluations=evaluations,
        source_images=[SourceImageForMeasurementGroup(evidence.SOPClassUID, evidence.SOPInstanceUID)])
    observer = ObserverContext(observer_type=codes.DCM.Device,
                               observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                                   uid=hd.UID(), name="opentransformer xray", manufacturer_name=MANUFACTURER,
                                   model_name=result.model.name))
    report = MeasurementReport(observation_context=ObservationContext(observer_device_context=observer),
                               procedure_reported=CodedConcept("399208008", "SCT", "Plain chest X-ray"),
                               imaging_measurements=[group])
    sr = ComprehensiveSR(evidence=[evidence], content=report[0], series_instance_uid=hd.UID(),
                         series_number=SR_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
                         manufacturer=MANUFACTURER, is_complete=False, is_verified=False, is_final=False,
                         series_description="OPENtransformer chest X-ray (research use only)")
    return _dataset_bytes(sr)


def _build_secondary_capture(result, include_phi: bool) -> bytes:
    import highdicom as hd
    import numpy as np

    source = _require_dicom(result)
    evidence = _evidence(source, include_phi)
    # The overlay is the source image, tinted: same orientation. Without one stored, a chest film as
    # conventionally displayed: columns run towards the patient's left, rows towards the feet.
    orientation = tuple(str(v) for v in source.get("PatientOrientation") or ()) or ("L", "F")
    sc = hd.sc.SCImage.from_ref_dataset(
        evidence, np.ascontiguousarray(result.overlay, dtype=np.uint8), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", patient_orientation=orientation[:2],
        series_instance_uid=hd.UID(), series_number=SC_SERIES_NUMBER, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer=MANUFACTURER,
        series_description="OPENtransformer attention overlay (research use only)")
    sc.BurnedInAnnotation = "NO"
    sc.ImageComments = "Research use only - not for diagnostic use"
    return _dataset_bytes(sc)
