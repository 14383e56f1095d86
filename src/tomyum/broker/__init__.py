"""Sockets, time and waiting: the asyncio broker over protocol/ and storage/."""
