"""Theano-style flags: parse, validate and merge a *profile* from every source.

:mod:`.keys` says what each key means and checks its value, :mod:`.sources` splits flag strings
and reads rc files exactly as Theano 1.0.5 does and merges every source in Theano's order, and
:mod:`.config` is the merged result, which writes itself back as a flags string.
"""

from ..engines.registry import FORMULATIONS  # noqa: F401
from .config import Config, Setting, format_flags, quote_value  # noqa: F401
from .keys import DEFAULT_ENGINE, DEFAULT_FORMULATION, KEYS, Key  # noqa: F401
from .sources import (canonical_key, check_value, load, parse_flags, parse_rc,  # noqa: F401
                      rc_paths, rc_variables, read_rc, split_flags, write_rc)
