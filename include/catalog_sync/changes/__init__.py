"""Change detection: what changed and what the ILS already holds, decided without guessing.

fingerprint (content fingerprints and record keys), identifiers (standard numbers as match
points compare them), matching (record-key map first, then the ILS's searchable numbers),
recordiff (field-level diffs and content fingerprints of ILS copies), protected (fields the
ILS owns), stamp (the create stamp that makes creates exactly-once), state (the state store:
loaded files, the commit ledger, pre-images) and revert (undoing a run by content).
"""
