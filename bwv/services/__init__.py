"""The use cases of bwv, one function per user action, composing the domain packages.

The CLI (and any other shell) calls exactly one service per command. A service owns the
transaction boundary and records the action's audit event; the domain packages below
(`ingest`, `compliance`, `bwv.custody`) take the session they work in. This is the one
layer that may import both `ingest` and `compliance`.
"""
