"""The files one result is written as: JSON, HTML, PDF, and for DICOM inputs an SR with the overlay
as a Secondary Capture. All are rendered in memory before any is written, so a failure while
rendering leaves nothing behind."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidRequestError

FORMATS = ("json", "html", "pdf", "sr")  # "sr" writes the Secondary Capture overlay beside the SR
DEFAULT_FORMATS = ("json", "pdf", "sr")
SUFFIXES = {"json": ".json", "html": ".html", "pdf": ".pdf", "sr": ".sr.dcm", "sc": ".sc.dcm"}


def parse_formats(text: str) -> tuple[str, ...]:
    """"json,pdf,sr" -> ("json", "pdf", "sr"), in FORMATS order; unknown names refused."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown or not names:
        raise InvalidRequestError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; "
                                  f"got {text!r}")
    return tuple(f for f in FORMATS if f in names)


@dataclass
class RenderedResult:
    record: dict  # the JSON record, its "artifacts" filled in
    paths: dict[str, Path]  # kind ("json", "pdf", "sr", "sc", ...) -> where it goes
    files: dict[Path, bytes]  # path -> contents, ready for write_all_atomic
    notes: list[str] = field(default_factory=list)  # formats left out, and why


def render_artifacts(result, base: Path, formats: tuple[str, ...], *, include_phi: bool = False,
                     input_path: str | None = None) -> RenderedResult:
    """Files named base + suffix. The record lists the artifacts by file name (they lie beside it)."""
    from .dicom_sr import overlay_secondary_capture, structured_report
    from .report import record_json, report_html, report_pdf, result_record

    wanted = list(formats)
    notes = []
    if "sr" in wanted and result.image.dataset is None:
        wanted.remove("sr")
        notes.append(f"no SR: the input is {result.image.kind}, not DICOM, so there is no instance to reference")
    kinds = wanted + (["sc"] if "sr" in wanted else [])
    paths = {kind: base.with_name(base.name + SUFFIXES[kind]) for kind in kinds}
    record = result_record(result, include_phi=include_phi, input_path=input_path,
                           artifacts={kind: path.name for kind, path in paths.items() if kind != "json"})
    renderers = {"json": lambda: record_json(record),
                 "html": lambda: report_html(result, record),
                 "pdf": lambda: report_pdf(result, record),
                 "sr": lambda: structured_report(result, include_phi=include_phi),
                 "sc": lambda: overlay_secondary_capture(result, include_phi=include_phi)}
    return RenderedResult(record, paths, {paths[kind]: renderers[kind]() for kind in kinds}, notes)
