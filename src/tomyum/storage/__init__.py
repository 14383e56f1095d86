"""The log engine: topics → partitions → segments, behind :mod:`tomyum.storage.engine`.

Storage never imports from ``tomyum.broker``; an ``OSError`` never leaves it unwrapped.
"""
