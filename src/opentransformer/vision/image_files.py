"""The image files a command line names: files as given, directories expanded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import InvalidRequestError


@dataclass(frozen=True)
class ImageFile:
    path: Path
    from_directory: bool  # found by listing a directory: skipped with a warning if unreadable


def image_extensions() -> set[str]:
    return {ext.lower() for ext in Image.registered_extensions()}


def collect_images(args: list[str]) -> list[ImageFile]:
    """Each argument is an image file, or a directory whose image files (by
    extension, hidden files left out, sorted) are all taken."""
    extensions = image_extensions()
    found: list[ImageFile] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            listed = sorted(p for p in path.iterdir()
                            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)
            if not listed:
                raise InvalidRequestError(f"{path}: no image files in this directory")
            found.extend(ImageFile(p, True) for p in listed)
        elif path.exists():
            found.append(ImageFile(path, False))
        else:
            raise InvalidRequestError(f"{path}: no such file or directory")
    return found
