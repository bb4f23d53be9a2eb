"""The ground floor: what every part of bwv stands on, importing nothing above it.

Models and migrations, the engine and transaction scopes (`db`), the hash-chained audit
append (`audit`), the one time vocabulary (`timeutil`), the content-addressed store and
hashing (`store`), and the rules that must mean one thing everywhere: what counts as
child speech (`child_speech`), how a clip is named (`clip_ref`) and how a CSV cell is
made spreadsheet-safe (`csvsafe`). Domain errors live in `errors`.
"""
