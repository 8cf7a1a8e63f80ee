"""The model layer: the seed RNN, its formulations, and the graphs every engine builds.

* :mod:`.spec`: cells, parameters, shapes, initialisation, tasks (no library but NumPy);
* :mod:`.graph`: the seed graph, written once for PyTensor and Theano (``seed``, ``hoisted``);
* :mod:`.hoisted`: the hoisted recurrence's hand-written gradient, for PyTensor;
* :mod:`.fused`: its two loops as C kernels, for PyTensor's C backend (``fused``);
* :mod:`.oracle`: the same model in NumPy, forward and BPTT (the float64 oracle);
* :mod:`.pytorch_dispatch`: the conversions PyTensor's PyTorch backend lacks, one module per op
  family.

Importing this package imports NumPy only; the PyTensor modules are imported by the engines.
"""

from .graph import GraphLib, SeedGraph, build_seed_graph, hoisted_recurrence  # noqa: F401
from .spec import (CELLS, PARAM_NAMES, TASKS, init_params, param_names,  # noqa: F401
                   param_shapes)
