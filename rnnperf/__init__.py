"""rnnperf: the scan-compiled Elman RNN, and its GRU and LSTM cells, under Theano-style flags,
on every backend, measured.

Importing this package imports no engine: Theano-family libraries read their flags when imported,
so an engine is imported only by :class:`RNN` (in-process API) or by a worker process.
"""

from .cells import Cell
from .errors import CheckFailed, ConfigError, RnnperfError, Unavailable
from .model.spec import CELLS, PARAM_NAMES, init_params, param_names
from .rnn import RNN

__version__ = "0.1.0"
__all__ = ["RNN", "Cell", "init_params", "param_names", "CELLS", "PARAM_NAMES", "RnnperfError",
           "ConfigError", "CheckFailed", "Unavailable", "__version__"]
