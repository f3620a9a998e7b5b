"""`make bench`: the server benchmark (server.py) and, when present, the browser benchmark (browser.py)."""
