"""Site adapters behind one interface (``bot.sites.base.Site``): the local arena and geoguessr.com."""
