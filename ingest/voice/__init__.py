"""Voice attribution at ingest time: is a segment a child's voice, and who spoke when.

`model` scores segments with the shipped classifier (numpy only); `speakers` groups a
clip's segments by voice. Training, augmentation, metrics and simulation live in
`ingest.voice.training` and are never imported while ingesting.
"""
