"""Frozen features: embedded once per image, kept under a fingerprint, read back."""
