"""The OAuth core over asyncio (aiohttp), for the triggerer: the same decisions, other transports."""
