"""Internal: old names kept for one release, each call warning once per call site."""

from __future__ import annotations

import warnings


def warn_deprecated(old: str, new: str) -> None:
    """Warn (``DeprecationWarning``, pointing at the caller's caller) that ``old`` is
    deprecated in favour of ``new``."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=3)
