"""A result as a versioned JSON record (schemas/xray_result.v1.json) and as a report a person files:
HTML, and PDF through reportlab. Patient identifiers enter none of them unless asked for."""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = "xray_result.v1.json"
NOTICE = "Research use only \u2014 not for diagnostic use"
REPORT_IMAGE_SIDE = 768  # pixels on the longer side: enough to read by eye, small enough to file

_UID_TAGS = {"study_instance_uid": "StudyInstanceUID", "series_instance_uid": "SeriesInstanceUID",
             "sop_instance_uid": "SOPInstanceUID", "sop_class_uid": "SOPClassUID", "modality": "Modality",
             "view_position": "ViewPosition"}


@lru_cache(maxsize=1)
def result_schema() -> dict:
    """The JSON Schema every record validates against, as shipped in the package."""
    return json.loads(resources.files(__package__).joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8"))


def result_record(result, *, include_phi: bool = False, artifacts: dict[str, str] | None = None,
                  input_path: str | None = None) -> dict:
    """The JSON record of an XrayResult. `input_path` overrides the path recorded for the input
    (an upload's file name is not a path on this machine)."""
    from .. import __version__

    image = result.image
    tags = image.tags or {}
    record = {
        "schema_version": SCHEMA_VERSION,
        "notice": NOTICE,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": {"name": "opentransformer", "version": __version__},
        "input": {"path": input_path if input_path is not None else (str(image.source) if image.source else None),
                  "sha256": image.sha256, "kind": image.kind,
                  "width": int(image.pixels.shape[1]), "height": int(image.pixels.shape[0])},
        "dicom": {key: (tags.get(tag) or None) for key, tag in _UID_TAGS.items()},
        "model": {"name": result.model.name, "weights_sha256": result.model.weights_sha256,
                  "labels": list(result.model.labels)},
        "probabilities": {label: float(p) for label, p in result.probabilities.items()},
        "prediction": result.prediction,
        "confidence": float(result.confidence),
        "positive": bool(result.positive),
        "positive_label": result.positive_label,
        "operating_point": float(result.operating_point),
        "checks": [{"name": c.name, "passed": bool(c.passed), "detail": c.detail} for c in result.checks],
        "warnings": list(image.warnings),
        "timings_s": {name: float(seconds) for name, seconds in result.timings.items()},
        "artifacts": dict(artifacts or {}),
    }
    if include_phi and image.phi:
        record["patient"] = dict(image.phi)
    return record


def record_json(record: dict) -> bytes:
    return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _fit(pixels: np.ndarray) -> "Image.Image":
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    image.thumbnail((REPORT_IMAGE_SIDE, REPORT_IMAGE_SIDE), Image.Resampling.LANCZOS)
    return image.convert("RGB")


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    _fit(pixels).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _summary_rows(record: dict) -> list[tuple[str, str]]:
    """The facts both report formats show, in order, as plain text."""
    rows = [("Input", record["input"]["path"] or "(upload)"),
            ("SHA-256", record["input"]["sha256"] or "-"),
            ("Image", f'{record["input"]["width"]} x {record["input"]["height"]} ({record["input"]["kind"]})')]
    dicom = record["dicom"]
    rows += [(label, dicom[key]) for label, key in (("Study UID", "study_instance_uid"),
                                                     ("Series UID", "series_instance_uid"),
                                                     ("SOP Instance UID", "sop_instance_uid"),
                                                     ("Modality", "modality"), ("View", "view_position"))
             if dicom[key]]
    rows += [(f"Patient {key}", value) for key, value in record.get("patient", {}).items()]
    model = record["model"]
    rows += [("Model", model["name"]), ("Weights SHA-256", model["weights_sha256"] or "-"),
             ("Prediction", f'{record["prediction"]} ({record["confidence"]:.1%})'),
             ("Finding", (f'{record["positive_label"]}: '
                          f'{"positive" if record["positive"] else "negative"} at operating point '
                          f'{record["operating_point"]:.2f}')),
             ("Created", record["created"])]
    return rows


def _check_rows(record: dict) -> list[tuple[str, str, str]]:
    return [(c["name"], "pass" if c["passed"] else "FLAG", c["detail"]) for c in record["checks"]]


def report_html(result, record: dict) -> bytes:
    """A self-contained HTML page: images inline as PNG data URLs."""
    def img(pixels: np.ndarray, alt: str) -> str:
        data = base64.b64encode(_png(pixels)).decode("ascii")
        return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'

    e = html.escape
    summary = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _summary_rows(record))
    probs = "".join(f"<tr><th>{e(label)}</th><td>{p:.2%}</td></tr>" for label, p in record["probabilities"].items())
    checks = "".join(f'<tr class="{"ok" if s == "pass" else "flag"}"><th>{e(n)}</th><td>{s}</td><td>{e(d)}</td></tr>'
                     for n, s, d in _check_rows(record))
    warnings = "".join(f"<li>{e(w)}</li>" for w in record["warnings"])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chest X-ray analysis</title>
<style>
body{{font-family:sans-serif;margin:2em;max-width:60em}} .notice{{background:#fde8e8;border:2px solid #b00;
padding:.6em;font-weight:bold;color:#700}} table{{border-collapse:collapse;margin:1em 0}} th,td{{text-align:left;
padding:.2em .8em;border-bottom:1px solid #ddd}} figure{{display:inline-block;margin:0 1em 0 0}}
img{{max-width:28em;border:1px solid #888}} tr.flag td{{color:#b00}}
</style></head><body>
<p class="notice">{e(NOTICE)}</p>
<h1>Chest X-ray analysis</h1>
<table>{summary}</table>
{img(result.image.pixels, "Rendered image")}{img(result.overlay, "Attention rollout overlay")}
<h2>Probabilities</h2><table>{probs}</table>
<h2>Image checks</h2><table>{checks}</table>
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
<p class="notice">{e(NOTICE)}. The model's output has not been reviewed by a clinician.</p>
</body></html>
"""
    return page.encode("utf-8")


def report_pdf(result, record: dict) -> bytes:
    """One A4 page (two if the checks are many) built with reportlab."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    e = html.escape  # Paragraph text is a small XML dialect
    notice = styles["Heading3"].clone("notice", textColor=colors.HexColor("#990000"), backColor=colors.HexColor(
        "#fde8e8"), borderPadding=4)
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)

    def table(rows, widths, header=False):
        t = Table([[Paragraph(e(str(c)), cell) for c in row] for row in rows], colWidths=widths, hAlign="LEFT")
        style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey)]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")))
        t.setStyle(TableStyle(style))
        return t

    def picture(pixels):
        fitted = _fit(pixels)
        side = 66 * mm
        scale = side / max(fitted.size)
        buf = io.BytesIO()
        fitted.save(buf, format="PNG")
        buf.seek(0)
        return Image(buf, width=fitted.size[0] * scale, height=fitted.size[1] * scale)

    images = Table([[picture(result.image.pixels), picture(result.overlay)],
                    [Paragraph("Rendered image", cell), Paragraph("Attention rollout overlay", cell)]],
                   colWidths=[88 * mm, 88 * mm])
    story = [Paragraph(e(NOTICE), notice), Spacer(1, 3 * mm),
             Paragraph("Chest X-ray analysis", styles["Title"]),
             table(_summary_rows(record), [40 * mm, 136 * mm]), Spacer(1, 4 * mm), images, Spacer(1, 4 * mm),
             Paragraph("Probabilities", styles["Heading2"]),
             table([("label", "probability")] + [(k, f"{v:.2%}") for k, v in record["probabilities"].items()],
                   [60 * mm, 40 * mm], header=True),
             Paragraph("Image checks", styles["Heading2"]),
             table([("check", "result", "detail")] + _check_rows(record), [40 * mm, 16 * mm, 120 * mm], header=True)]
    if record["warnings"]:
        story += [Paragraph("Warnings", styles["Heading2"])] + [Paragraph(e(w), cell) for w in record["warnings"]]
    def footer(canvas, doc):  # on every page, however many the checks take
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 8)
        canvas.setFillColor(colors.HexColor("#990000"))
        canvas.drawString(16 * mm, 9 * mm, NOTICE + ". The model's output has not been reviewed by a clinician.")
        canvas.drawRightString(A4[0] - 16 * mm, 9 * mm, f"page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    # invariant=1 drops the creation date and random document id, so equal inputs give equal files
    SimpleDocTemplate(buf, pagesize=A4, leftMargin=16 * mm, rightMargin=16 * mm, topMargin=14 * mm,
                      bottomMargin=14 * mm, title="Chest X-ray analysis", author="opentransformer",
                      subject=NOTICE, invariant=1).build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
