"""What a sweep measures: profiles x shapes x tasks, as :class:`Job`\\ s.

A job's :attr:`~Job.key` (``profile|T=..,B=..,I=..,H=..,O=..|task``) is what ``--resume`` and
``compare`` match on; :meth:`Job.blank` is the measurement's identity before anything runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket

from .. import cells
from ..errors import ConfigError
from ..model.spec import TASKS
from . import results as res
from .flops import step_flops

#: the reference workload (RW) every speed claim starts from
REFERENCE_SHAPE = {"T": 100, "B": 32, "I": 128, "H": 256, "O": 10}


def parse_shape(text: str) -> dict:
    """``T=100,B=32,I=128,H=256[,O=10]`` -> dict; one ConfigError line naming the bad token."""
    shape: dict = {}
    for token in text.split(","):
        token = token.strip()
        if not token:
            continue
        key, sep, value = token.partition("=")
        key = key.strip().upper()
        if not sep or key not in res.SHAPE_KEYS:
            raise ConfigError(f"--shape {text}: bad token {token!r} (expected T=,B=,I=,H=[,O=])")
        if not re.fullmatch(r"[0-9]+", value.strip()) or int(value) < 1:
            raise ConfigError(f"--shape {text}: {key}={value!r} must be a positive integer")
        shape[key] = int(value)
    missing = [k for k in ("T", "B", "I", "H") if k not in shape]
    if missing:
        raise ConfigError(f"--shape {text}: missing {', '.join(missing)}")
    shape.setdefault("O", 10)
    return {k: shape[k] for k in res.SHAPE_KEYS}


@dataclasses.dataclass
class Job:
    config: object          # rnnperf.flags.Config
    shape: dict
    task: str
    #: FLOPs of one step when counted before the sweep (a user's cell, from its step's graph:
    #: :mod:`.cell_check`), so that a job measured on another process (Dask) carries them
    flops: int | None = None

    @property
    def profile(self) -> str:
        return self.config.profile()

    @property
    def key(self) -> str:
        return res.make_key(self.profile, self.shape, self.task)

    def blank(self, **fields) -> res.Measurement:
        """The measurement's identity, filled before anything runs."""
        cfg, s = self.config, self.shape
        return res.Measurement(
            key=self.key, profile=self.profile, engine=cfg.engine, task=self.task,
            shape=dict(s), flags=cfg.values(), device_requested=cfg.device,
            dtype=cfg.floatX, threads=cfg.threads or os.cpu_count(),
            flops_per_step=self.flops if self.flops is not None else step_flops(
                self.task, s["T"], s["B"], s["I"], s["H"], s["O"], cfg.cell),
            cell=cells.get(cfg.cell).record(),
            host=socket.gethostname(), started=res.now(), **fields)


def profiles(profile_args, engines_arg, flags_args, rc_args, threads) -> list:
    """Configs for ``--profile``/``--engines`` under ``--flags``/``--rc``; ``--threads`` wins."""
    from .. import flags
    texts = list(profile_args or [])
    for name in (engines_arg or "").split(","):
        if name.strip():
            texts.append(f"engine={name.strip()}")
    if not texts:
        texts = [""]                       # the profile from env/rc/--flags alone
    top = [f"threads={threads}"] if threads else []
    configs, seen = [], set()
    for text in texts:
        config = flags.load(flags=list(flags_args or []) + [text] + top, rc=rc_args)
        if config.profile() not in seen:
            seen.add(config.profile())
            configs.append(config)
    return configs


def plan(configs, shapes, tasks=TASKS) -> list[Job]:
    return [Job(c, s, t) for c in configs for s in shapes for t in tasks]
