"""``pigeon.matchstats`` is ``arena.matchstats``: the pure match statistics moved into the arena so its stats page
can show them (the arena may not import ``pigeon``, tests/test_layers.py); this name stays for the CLI, the
tests and scripts that import it from here."""
import sys

from arena import matchstats as _matchstats

sys.modules[__name__] = _matchstats
