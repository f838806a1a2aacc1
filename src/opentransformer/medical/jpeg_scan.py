"""Repair of a sequential JPEG's scan header (PS3.5 A.4.1: JPEG Baseline and
Extended). Some encoders write Ss/Se/Ah/Al other than 0/63/0/0 there; the
IJG library that dcmtk decodes with warns and uses 0/63/0/0, while libjpeg
(pylibjpeg's decoder) refuses the stream. Writing the only values the
sequential process allows lets such files decode as dcmtk decodes them."""
from __future__ import annotations

SEQUENTIAL_FRAMES = (0xC0, 0xC1)                     # SOF0 baseline, SOF1 extended (Huffman)
OTHER_FRAMES = (0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
STANDALONE = {0x01, 0xD8, 0xD9, *range(0xD0, 0xD8)}   # markers without a length
SOS = 0xDA


def repair_sequential_scans(codestream: bytes) -> bytes | None:
    """The codestream with its sequential scan headers set to Ss=0, Se=63,
    Ah=Al=0, or None when it needs no repair (or is not sequential JPEG)."""
    data = bytearray(codestream)
    sequential = None
    changed = False
    i = 0
    while i + 4 <= len(data):
        if data[i] != 0xFF or data[i + 1] in (0x00, 0xFF):
            i += 1
            continue
        marker = data[i + 1]
        if marker in STANDALONE:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in SEQUENTIAL_FRAMES:
            sequential = True
        elif marker in OTHER_FRAMES:
            return None
        elif marker == SOS and sequential:
            components = data[i + 4] if i + 4 < len(data) else 0
            spectral = i + 5 + 2 * components
            if spectral + 3 <= len(data) and bytes(data[spectral:spectral + 3]) != b"\x00\x3f\x00":
                data[spectral:spectral + 3] = b"\x00\x3f\x00"
                changed = True
        # Entropy-coded data after a scan header is skipped byte by byte above:
        # within it 0xFF is followed by 0x00 (stuffing) or a restart marker.
        i += 2 + length
    return bytes(data) if changed else None
