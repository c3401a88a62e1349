"""`portscope export`: the monitor's picture as Prometheus metrics.

One warm collector is polled once per interval on a background thread (exporter.py); what
lasts between polls (listener events, restarts, poll times and failures) is kept by tally.py;
each poll's metric families are built once (families.py) and every scrape is answered from
them, over a read-only HTTP server (http.py) or as a node_exporter textfile (textfile.py).
Only `portscope export` imports this package: prometheus_client stays out of other commands.
"""
