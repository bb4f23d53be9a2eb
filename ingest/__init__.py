"""Turning folders of body-worn video into catalogue rows: discovery to the per-file worker."""
