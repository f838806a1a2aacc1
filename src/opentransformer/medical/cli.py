"""`opentransformer xray`: the command group, registered on the main parser. Nothing heavy is imported
until a command runs, so `opentransformer --help` stays fast and works without the medical extra."""
from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from ..errors import InvalidRequestError, MissingExtraError

MEDICAL_MODULES = ("pydicom", "highdicom", "reportlab", "nibabel")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require_medical_extra() -> None:
    missing = [m for m in MEDICAL_MODULES if not _importable(m)]
    if missing:
        raise MissingExtraError(f"chest X-ray analysis needs {', '.join(missing)}: "
                                "install opentransformer[medical] (pip install 'opentransformer[medical]')")


def register_xray_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("xray", help="chest X-ray analysis: DICOM, PNG, JPEG or NIfTI in; JSON, PDF, DICOM SR out")
    actions = p.add_subparsers(dest="xray_command", required=True, metavar="ACTION")
    a = actions.add_parser(
        "analyze", help="classify chest X-rays and write reports",
        description="Classify chest X-rays with a ViT and write, per image, a JSON result, an HTML or PDF report, "
                    "and for DICOM inputs a Comprehensive SR plus the heatmap overlay as a Secondary Capture. "
                    "Folders are walked; DICOM is ordered by study and series. Files that fail are logged with "
                    "the reason and skipped; the exit status is 1 if any failed. A single file named alone is "
                    "an error if it cannot be analysed, and nothing is written. Research use only - not for "
                    "diagnostic use.")
    a.add_argument("paths", nargs="+", metavar="PATH", help="an image file, or a folder to walk")
    a.add_argument("--output", "-o", required=True, metavar="OUTDIR", help="where results go")
    a.add_argument("--model", "-m", default=None,
                   help="a ViT classifier: a model directory or a downloaded repo id "
                        "(default: lxyuan/vit-xray-pneumonia-classification, from the local cache)")
    a.add_argument("--batch-size", "-b", type=int, default=16, help="images per forward pass (default: %(default)s)")
    a.add_argument("--format", default="json,pdf,sr", metavar="LIST",
                   help="comma-separated, of json, html, pdf, sr (sr: DICOM SR and Secondary Capture, for "
                        "DICOM inputs) (default: %(default)s)")
    a.add_argument("--resume", action="store_true",
                   help="skip files an earlier run into OUTDIR finished (same path, size and time)")
    a.add_argument("--window", type=int, default=None, metavar="N",
                   help="the N-th VOI LUT or window of a DICOM, 0-based (default: the first; none: full range)")
    a.add_argument("--frame", type=int, default=0, metavar="N", help="frame of a multi-frame DICOM (default: 0)")
    a.add_argument("--strict", action="store_true",
                   help="refuse DICOM whose modality is not an X-ray (CR, DX, DR, RG) instead of flagging it")
    a.add_argument("--include-phi", action="store_true",
                   help="put patient identifiers (name, ID, birth date, ...) into the reports, JSON and SR; "
                        "by default none leave the input files")
    a.add_argument("--operating-point", type=float, default=0.5, metavar="P",
                   help="probability of the finding at or above which the image is called positive "
                        "(default: %(default)s)")
    a.add_argument("--threads", "-t", type=int, default=None, help="compute threads (default: physical cores)")
    a.set_defaults(func=cmd_xray_analyze)


def _check(a: argparse.Namespace) -> tuple[str, ...]:
    from .artifacts import parse_formats

    if a.batch_size < 1:
        raise InvalidRequestError("--batch-size must be >= 1")
    if not 0.0 <= a.operating_point <= 1.0:
        raise InvalidRequestError("--operating-point must be in [0, 1]")
    if a.frame < 0 or (a.window is not None and a.window < 0):
        raise InvalidRequestError("--frame and --window count from 0")
    return parse_formats(a.format)


class _ConsoleHandler(logging.Handler):
    """Log records as lines on the CLI's stderr console, above any progress bar."""

    def __init__(self, console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        colour = "yellow" if record.levelno >= logging.WARNING else "dim"
        self.console.print(f"[{colour}]{escape(record.getMessage())}[/{colour}]", soft_wrap=True)


def cmd_xray_analyze(a: argparse.Namespace) -> int:
    require_medical_extra()
    formats = _check(a)

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .. import load_classifier
    from ..cli import err
    from .batch import LOG, SUMMARY, BatchOptions, BatchRun, collect_files, group_files

    outdir = Path(a.output).expanduser()
    if outdir.exists() and not outdir.is_dir():
        raise InvalidRequestError(f"{outdir}: exists and is not a directory")
    single = len(a.paths) == 1 and Path(a.paths[0]).expanduser().is_file()
    options = BatchOptions(formats=formats, batch_size=a.batch_size, operating_point=a.operating_point,
                           include_phi=a.include_phi, frame=a.frame, window=a.window, strict=a.strict,
                           resume=a.resume, fail_fast=single)
    files = group_files(collect_files(a.paths, exclude=outdir))

    def load():
        from .analysis import DEFAULT_XRAY_MODEL

        model = a.model or DEFAULT_XRAY_MODEL
        with err.status(f"loading {escape(model)} …"):
            return load_classifier(model, threads=a.threads)

    logger = logging.getLogger("opentransformer.medical.batch")
    handlers = [_ConsoleHandler(err)]
    if not single:
        # delay: the file appears with the first message, not before anything is known
        handlers.append(logging.FileHandler(outdir / LOG, encoding="utf-8", delay=True))
        handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        outdir.mkdir(parents=True, exist_ok=True)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, transient=True, disable=single) as progress:
            task = progress.add_task("analysing", total=len(files))
            summary = BatchRun(outdir, options, load, on_file=lambda: progress.advance(task)).run(files)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
    out = Console(highlight=False, soft_wrap=True)
    if single:
        outcome = summary.outcomes[0]
        out.print(f"{escape(str(outcome.path))}: [bold]{escape(outcome.row['prediction'])}[/bold] "
                  f"({float(outcome.row['confidence']):.1%})")
        for path in outcome.outputs.values():
            out.print(f"  {escape(str(outdir / path))}")
        return 0
    failed = summary.failed
    out.print(f"{summary.succeeded} analysed ({summary.resumed} from an earlier run), {len(failed)} failed; "
              f"summary: {escape(str(outdir / SUMMARY))}")
    return 1 if failed else 0
