"""Top layer: wires config -> data -> models -> training -> evaluation -> inference into runs.

The CLI and the public API call these; nothing below imports them.
"""
