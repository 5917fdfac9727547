"""The arena: a local GeoGuessr-like web game for humans and bots (classic, duels, blind duels).

``make_server(world_dir, db_path)`` starts it in a thread; ``pigeon arena`` serves it from the command line.
Imports neither torch nor the model network: rounds come from dataset folders on disk.
"""

from .app import ArenaServer, make_server

__all__ = ["ArenaServer", "make_server"]
