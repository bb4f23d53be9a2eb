"""Chain of custody: proving that what is shown or disclosed is what was catalogued.

`chain` walks and exports the hash-chained audit trail; `files` re-hashes originals and
store copies (`bwv verify`) and writes disclosure folders (`bwv export`). Custody is
its own domain: it imports only `bwv.core`, and what a disclosure holds from other
domains (verdicts, transcripts) is handed to it by `bwv.services.custody`.
"""
