"""The bottom layer: what every other package may import and that imports none of them.

`errors` (the typed, one-line, user-facing failures), `argtypes` (argparse types that refuse
a bad argument while parsing), `threads` (torch's CPU thread count for every entry point)
and the version.
"""

__version__ = "0.1.0"
