"""Metadata of evidence files: extraction, sharing copies stripped of it, and their checks."""
