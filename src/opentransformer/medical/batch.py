"""`opentransformer xray analyze` over many files: walk folders, order DICOM by study and series,
classify in batches, write each result's artifacts atomically, log and skip files that fail, keep a
manifest so an interrupted run resumes without redoing finished files, and write summary.csv."""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidRequestError, OpenTransformerError
from .atomic import write_all_atomic, write_atomic

log = logging.getLogger("opentransformer.medical.batch")

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.csv"
LOG = "xray.log"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class BatchOptions:
    formats: tuple[str, ...]
    batch_size: int = 16
    operating_point: float = 0.5
    include_phi: bool = False
    frame: int = 0
    window: int | None = None
    strict: bool = False
    resume: bool = False
    fail_fast: bool = False  # raise the first failure instead of logging it: a single named file


@dataclass
class FileOutcome:
    path: Path
    ok: bool
    row: dict  # its summary.csv row
    outputs: dict[str, str] = field(default_factory=dict)  # format -> path under the output directory


@dataclass
class BatchSummary:
    outcomes: list[FileOutcome]
    resumed: int  # files finished by an earlier run, not redone

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def succeeded(self) -> int:
        return sum(o.ok for o in self.outcomes)


def collect_files(paths: list[str | Path], exclude: Path | None = None) -> list[Path]:
    """Files as given; directories walked recursively, hidden entries and `exclude` (the output
    directory, when it lies inside an input) left out. Every file is a candidate: DICOM is known
    by content, not by name, so nothing is dropped for its extension."""
    skip = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    for arg in paths:
        path = Path(arg).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() != skip)
                found.extend(Path(root, f) for f in sorted(files) if not f.startswith("."))
        elif path.exists():
            found.append(path)
        else:
            raise InvalidRequestError(f"{path}: no such file or directory")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InvalidRequestError(f"no files found in {', '.join(str(p) for p in paths)}")
    return unique


def _dicom_identity(path: Path) -> tuple[str, str, int] | None:
    """(study UID, series UID, instance number) from the header only, or None when the file is not
    DICOM or its header cannot be read (reading it later reports why)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from .io import is_dicom

    if not is_dicom(path):
        return None
    try:
        ds = dcmread(path, stop_before_pixels=True,
                     specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "InstanceNumber"])
        number = ds.get("InstanceNumber")
        return (str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")),
                int(number) if number not in (None, "") else 0)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def group_files(files: list[Path]) -> list[Path]:
    """DICOM first, grouped by study then series, in instance order; other files after, as listed."""
    keyed = []
    for index, path in enumerate(files):
        identity = _dicom_identity(path)
        keyed.append(((0, *identity, index) if identity else (1, "", "", 0, index), path))
    return [path for _, path in sorted(keyed, key=lambda item: item[0])]


def _file_key(path: Path) -> str:
    """What makes a file 'the same file' for --resume: where it is, its size and its mtime."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def output_base(outdir: Path, image) -> Path:
    """OUTDIR/STUDY_UID/SERIES_UID/SOP_UID for DICOM, as a PACS files them; OUTDIR/images/STEM-SHA8
    for other files (the hash keeps same-named files in different folders apart)."""
    tags = image.tags
    uids = [tags.get(k, "") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    if image.dataset is not None and all(_UID.match(u) for u in uids):
        return outdir.joinpath(*uids)
    stem = image.source.name.split(".")[0] if image.source else "image"
    return outdir / "images" / f"{stem or 'image'}-{(image.sha256 or '0' * 8)[:8]}"


class Manifest:
    """OUTDIR/manifest.jsonl: one line per file finished or failed, appended and flushed as each
    happens, so a killed run loses at most the file it was writing."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.done: dict[str, dict] = {}
        if resume and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a killed run was writing
                if isinstance(entry, dict) and "key" in entry:
                    self.done[entry["key"]] = entry
        elif path.exists():
            path.unlink()
        self._file = None

    def finished(self, key: str, formats: tuple[str, ...], outdir: Path) -> dict | None:
        """The entry of a file an earlier run finished with these formats, its outputs still there."""
        entry = self.done.get(key)
        if not entry or entry.get("status") != "ok":
            return None
        outputs = entry.get("outputs", {})
        if not set(formats) <= set(entry.get("formats", ())):
            return None
        if not all((outdir / p).is_file() for p in outputs.values()):
            return None
        return entry

    def append(self, entry: dict) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _summary_row(path: Path, record: dict | None, outputs: dict[str, str], error: str = "") -> dict:
    row = {"file": str(path), "status": "ok" if record else "failed", "prediction": "", "confidence": "",
           "positive": "", "study_instance_uid": "", "series_instance_uid": "", "sop_instance_uid": "",
           "outputs": " ".join(outputs.values()), "error": error}
    if record:
        row.update(prediction=record["prediction"], confidence=f'{record["confidence"]:.6f}',
                   positive=str(record["positive"]).lower(),
                   **{k: record["dicom"][k] or "" for k in ("study_instance_uid", "series_instance_uid",
                                                            "sop_instance_uid")},
                   **{f"p_{label}": f"{p:.6f}" for label, p in record["probabilities"].items()})
    return row


def summary_csv(outcomes: list[FileOutcome]) -> bytes:
    columns = list(_summary_row(Path(), None, {}))
    labels = list(dict.fromkeys(k for o in outcomes for k in o.row if k.startswith("p_")))
    columns[5:5] = labels
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(o.row for o in outcomes)
    return buf.getvalue().encode("utf-8")


class BatchRun:
    """One run over a list of files. `load_classifier` is called once, when the first readable image
    needs it, so a run whose files all fail never loads the model."""

    def __init__(self, outdir: Path, options: BatchOptions, load_classifier: Callable[[], object],
                 on_file: Callable[[], None] = lambda: None):
        self.outdir = outdir
        self.options = options
        self._load_classifier = load_classifier
        self._classifier = None
        self._on_file = on_file

    def run(self, files: list[Path]) -> BatchSummary:
        manifest = Manifest(self.outdir / MANIFEST, self.options.resume)
        outcomes: dict[Path, FileOutcome] = {}
        pending: list[tuple[Path, str]] = []
        for path in files:
            key = _file_key(path)
            entry = manifest.finished(key, self.options.formats, self.outdir)
            if entry is not None:
                outcomes[path] = FileOutcome(path, True, entry["row"], entry["outputs"])
                self._on_file()
            else:
                pending.append((path, key))
        resumed = len(outcomes)
        if resumed:
            log.info("resuming: %d file(s) already finished, %d to do", resumed, len(pending))
        try:
            for chunk in _chunks(pending, self.options.batch_size):
                for outcome, key in self._run_chunk(chunk):
                    outcomes[outcome.path] = outcome
                    manifest.append({"key": key, "status": "ok" if outcome.ok else "failed",
                                     "formats": list(self.options.formats), "outputs": outcome.outputs,
                                     "row": outcome.row})
                    self._on_file()
        finally:
            manifest.close()
        ordered = [outcomes[p] for p in files if p in outcomes]
        write_atomic(self.outdir / SUMMARY, summary_csv(ordered))
        return BatchSummary(ordered, resumed)

    def _fail(self, path: Path, error: OpenTransformerError) -> FileOutcome:
        if self.options.fail_fast:
            raise error
        # readers name the file in their messages; errors from later stages may not
        reason = str(error) if str(path) in str(error) else f"{path}: {error}"
        log.warning("skipped %s", reason)
        return FileOutcome(path, False, _summary_row(path, None, {}, reason))

    def _run_chunk(self, chunk: list[tuple[Path, str]]) -> Iterator[tuple[FileOutcome, str]]:
        from .io import read_xray

        readable = []
        for path, key in chunk:
            try:
                image = read_xray(path, frame=self.options.frame, window=self.options.window,
                                  strict=self.options.strict)
            except OpenTransformerError as exc:
                yield self._fail(path, exc), key
                continue
            readable.append((path, key, image))
        if not readable:
            return
        for (path, key, image), result in zip(readable, self._analyze([r[2] for r in readable])):
            if isinstance(result, OpenTransformerError):
                yield self._fail(path, result), key
            else:
                yield self._write(path, result), key

    def _analyze(self, images: list) -> list:
        """Results in order; an image the analysis refuses gets its error in its place, found by
        retrying the batch one image at a time."""
        from .analysis import analyze_batch

        if self._classifier is None:
            self._classifier = self._load_classifier()
        try:
            return analyze_batch(images, self._classifier, operating_point=self.options.operating_point)
        except OpenTransformerError:
            if len(images) == 1:
                raise
        results = []
        for image in images:
            try:
                results.extend(analyze_batch([image], self._classifier, operating_point=self.options.operating_point))
            except OpenTransformerError as exc:
                results.append(exc)
        return results

    def _write(self, path: Path, result) -> FileOutcome:
        from .artifacts import render_artifacts

        base = output_base(self.outdir, result.image)
        try:
            rendered = render_artifacts(result, base, self.options.formats, include_phi=self.options.include_phi)
        except OpenTransformerError as exc:
            return self._fail(path, exc)
        for note in rendered.notes:
            log.info("%s: %s", path, note)
        write_all_atomic(rendered.files)
        outputs = {kind: str(p.relative_to(self.outdir)) for kind, p in rendered.paths.items()}
        return FileOutcome(path, True, _summary_row(path, rendered.record, outputs), outputs)
