"""Redacted copies: find faces, choose what to hide, and render a new copy of a clip.

Footage of children, victims and bystanders may leave the evidence store only with
their faces blurred and their personal details silenced. This package holds the media
work (face model, detection, tracking, word timing, the ffmpeg render); it reads the
catalogue never and writes it never: `bwv.services.redaction` composes it with the
catalogue, the store and the audit trail. It sits above `ingest`, whose Whisper loading
and media probing it reuses, and below the services.
"""
