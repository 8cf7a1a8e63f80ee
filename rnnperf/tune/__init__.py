"""Tuning: measure a space of profiles, reject what fails parity, write the fastest as an rc file.

The space is a product of flag values (and shape keys such as the batch size ``B``). By default it
sweeps speed knobs only: every engine installed here that can win on the device (the registry's
``not_tuned_on`` says which cannot, and why: pytensor-pytorch on a CPU) x ``threads`` (1 and all
cores) x ``formulation`` (seed, hoisted, and fused on pytensor-c; only for Theano-family engines,
the others have one formulation). ``floatX`` stays the profile's (float32 unless set): a precision
is the user's choice, not a speed knob.
A TOML file (``--space``) replaces or adds keys in a ``[space]`` table, each a list of values::

    [space]
    engine = ["numpy", "pytensor-c"]
    floatX = ["float32"]
    "blas.ldflags" = ["", "-lopenblas"]
    B = [8, 32]

Every measurement runs in fresh processes (:mod:`.point`): the ``parity`` worker job against the
float64 oracle, then the harness's ``bench`` job. By default the space is searched by successive
halving (:mod:`.halving`, :mod:`.halving_run`): every point measured briefly, the best third
again for longer, and so on, parity checked when a point is first promoted; ``--strategy
exhaustive`` measures and checks every point at full length (:mod:`rnnperf.bench.sweep`).
``--budget`` (:mod:`.budget`) stops with the best point so far. A point that fails parity is
shown as rejected and never chosen, however fast. The sweep is an
``rnnperf.results/3`` document (``--results``, default ``<out>.sweep.json``) saved after every
point, resumable with ``--resume``; each measurement's parity outcome is in ``extra["parity"]``. The
winner is written with :func:`rnnperf.flags.write_rc` under a comment header of the figures it was
chosen on, and reads back through ``rnnperf flags --rc`` into the same profile. A plot goes next to
it (``.png``).

Exit codes: 0 a winner was written; 1 no point passed parity (or none measured); 2 bad usage (an
unknown key or value in the space file, unparsable TOML, an empty space); 3 Dask missing, or a
scheduler that cannot be reached or has no ``bench`` worker.

Modules: :mod:`.space` (the space), :mod:`.point` (one point: parity, then the benchmark),
:mod:`.halving` (the rungs), :mod:`.halving_run` (their document), :mod:`.budget`, :mod:`.live`
(the live table), :mod:`.rank`, :mod:`.report` (table, plot, rc text), :mod:`.run` (the whole
tune); the command line is :mod:`rnnperf.cli.tune`.
"""
