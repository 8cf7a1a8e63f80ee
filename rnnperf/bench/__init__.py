"""The benchmark harness: plan, sweep, workers, timing, results, and what reads them.

Parent side (never imports an engine: Theano-family flags are read at import): :mod:`.plan`
(jobs), :mod:`.sweep` (the one loop), :mod:`.runners` (here or on Dask), :mod:`.process` (start a
worker, read its answer), :mod:`.results` (the document), :mod:`.machine`, :mod:`.compare`,
:mod:`.table`, :mod:`.plot`, :mod:`.parity` (the oracle comparison), :mod:`.warm`.

Worker side (imported in the worker process only): :mod:`.worker` (the entry point),
:mod:`.step_job` (the ``bench`` job), :mod:`.peak`, :mod:`.faults`, and the worker jobs of
:mod:`.parity` and :mod:`.warm`. :mod:`.timing` and :mod:`.flops` serve both.
"""
