"""What changed while you watched: listener events between polls (events.py), a bounded
event log (log.py), bounded per-port trends of TIME_WAIT and live connections (trends.py),
their words and JSON (wording.py), and the one object a monitor feeds (recorder.py)."""
