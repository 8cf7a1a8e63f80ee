"""Theano-style flags: parse, validate and merge a *profile* from every source.

:mod:`.keys` says what each key means and checks its value, :mod:`.sources` reads flag strings
and rc files in Theano's order, and :mod:`.config` is the merged result.
"""

from ..engines.registry import FORMULATIONS  # noqa: F401
from .config import Config, Setting  # noqa: F401
from .keys import DEFAULT_ENGINE, DEFAULT_FORMULATION, KEYS, Key  # noqa: F401
from .sources import (canonical_key, check_value, load, parse_flags, parse_rc,  # noqa: F401
                      rc_paths, write_rc)
