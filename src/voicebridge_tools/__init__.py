"""Your own tools: put a module here, decorate its functions with `@tool` (from voicebridge.tools), and list it in
`VOICEBRIDGE_TOOLS`, e.g. `VOICEBRIDGE_TOOLS=voicebridge_tools.orders`.

This folder is a package of the voicebridge distribution, so `pip install .`, `make run` and the container image
(the Dockerfile installs `src/`) all carry it: a module that works with `make run` works deployed too
(`azd env set VOICEBRIDGE_TOOLS voicebridge_tools.orders`, then `azd provision` or `bash azdeploy.sh`).
`example.py` is a worked example; nothing here is loaded unless VOICEBRIDGE_TOOLS names it.
"""
