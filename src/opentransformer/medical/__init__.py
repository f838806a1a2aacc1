"""Chest X-ray analysis: reading DICOM, PNG, JPEG and NIfTI, rendering, classification, reports."""
from .io import XrayImage, XrayReadError, is_dicom, read_xray

__all__ = ["XrayImage", "XrayReadError", "is_dicom", "read_xray"]
