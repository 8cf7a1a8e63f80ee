"""The effective profile: every key with its value and the source that set it."""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Mapping

from .. import cells
from ..engines import registry
from ..errors import ConfigError
from .keys import KEYS, matmul_precision_refusal

#: a value made of these characters reads back from a flags string as written
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:./-]+")


def quote_value(value: str) -> str:
    """``value`` as Theano's split (:func:`.sources.split_flags`) reads it back: as is when
    plain, else single-quoted.

    Inside single quotes shlex keeps everything (``,``, ``"``, ``#``, ``\\``, spaces, newlines);
    a single quote itself is closed, written as ``"'"`` and reopened, as :func:`shlex.quote` does.
    """
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def format_flags(items: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``key=value,...`` that Theano, PyTensor and :func:`.sources.split_flags` read back
    unchanged."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return ",".join(f"{key}={quote_value(value)}" for key, value in pairs)


@dataclasses.dataclass(frozen=True)
class Setting:
    value: str
    source: str


class Config:
    """The effective profile; ``engine=pytensor,mode=CVM`` resolves to ``engine=pytensor-c``."""

    def __init__(self, settings: Mapping[str, Setting]):
        self.settings = dict(settings)
        self._resolve_engine()
        self._resolve_formulation()
        self._check_matmul_precision()
        self._check_cell()

    def _check_cell(self) -> None:
        """A cell the engine or formulation cannot run is refused before anything runs (exit 2),
        naming the part the cell lacks."""
        setting = self.settings.get("cell")
        if setting is None:
            return
        why = cells.refusal(cells.get(setting.value), self.engine, self["formulation"])
        if why:
            raise ConfigError(f"{setting.source}: {why}")

    def _check_matmul_precision(self) -> None:
        """A precision the engine's products would not honour is refused, not recorded."""
        setting = self.settings.get("matmul_precision")
        if setting is not None:
            why = matmul_precision_refusal(self.engine, setting.value)
            if why:
                raise ConfigError(f"{setting.source}: {why}")

    def _resolve_engine(self) -> None:
        """Make ``engine=pytensor,mode=CVM`` and ``engine=pytensor-c`` the same profile."""
        engine = self.settings["engine"]
        mode = self.settings.get("mode")
        modes = registry.mode_table()
        if engine.value == registry.PYTENSOR_ALIAS:
            chosen = modes[mode.value if mode else registry.PYTENSOR_DEFAULT_MODE]
            self.settings["engine"] = Setting(chosen, engine.source)
            if not mode:
                self.settings["mode"] = Setting(registry.PYTENSOR_DEFAULT_MODE,
                                                "default (PyTensor's)")
            return
        spec = registry.get(engine.value)
        if spec.mode:
            if mode and modes[mode.value] != engine.value:
                raise ConfigError(
                    f"{mode.source}: mode={mode.value} contradicts engine={engine.value} "
                    f"(set by {engine.source}), which means mode={spec.mode}")
            if not mode:
                self.settings["mode"] = Setting(spec.mode, f"implied by engine={engine.value}")
        elif mode and not spec.takes_mode:
            raise ConfigError(f"{mode.source}: mode={mode.value} has no meaning for "
                              f"engine={engine.value}")

    def _resolve_formulation(self) -> None:
        """The engine's own default formulation; one it cannot build is refused."""
        setting = self.settings.get("formulation")
        if setting is None:
            return
        spec = registry.get(self.engine)
        if not spec.has_formulations:
            said = "" if setting.source == "default" or setting.value == "seed" else \
                f"; {setting.source} said {setting.value}, which it cannot build"
            self.settings["formulation"] = Setting(
                "seed", f"implied by engine={self.engine} (it has one formulation{said})")
            return
        if setting.source == "default":
            cell = self.settings.get("cell")
            cell = cells.get(cell.value if cell else None)
            if cells.refusal(cell, self.engine, spec.default_formulation):
                # a cell with its step alone: the engine's default needs parts it lacks, and
                # the seed formulation runs any step (an explicit choice is still refused)
                self.settings["formulation"] = Setting(
                    "seed", f"default for engine={self.engine} with cell={cell.name} (its "
                    f"default, {spec.default_formulation}, needs parts the cell lacks)")
            else:
                self.settings["formulation"] = Setting(spec.default_formulation,
                                                       f"default for engine={self.engine}")
        elif spec.has_formulations and setting.value not in spec.formulations:
            builders = [s.name for s in registry.REGISTRY.values()
                        if setting.value in s.formulations and s.has_formulations]
            raise ConfigError(f"{setting.source}: formulation={setting.value} runs on "
                              f"{', '.join(builders)} only (its C kernels); "
                              f"engine={self.engine} builds {' or '.join(spec.formulations)}")

    def __getitem__(self, key: str) -> str | None:
        setting = self.settings.get(key)
        return setting.value if setting else None

    def get(self, key: str, default=None):
        value = self[key]
        return default if value is None else value

    @property
    def engine(self) -> str:
        return self["engine"]

    @property
    def device(self) -> str:
        return self["device"]

    @property
    def cell(self) -> str:
        return self["cell"] or "elman"

    @property
    def floatX(self) -> str:
        return self["floatX"]

    @property
    def threads(self) -> int | None:
        return int(self["threads"]) if self["threads"] else None

    @property
    def wants_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        return int(self.device[4:] or 0) if self.wants_gpu else 0

    def passthrough(self) -> dict[str, str]:
        """Keys that belong to the engine's own configuration (dotted, or not owned by us)."""
        return {k: s.value for k, s in self.settings.items()
                if "." in k or (k in KEYS and not KEYS[k].owned)}

    def profile(self) -> str:
        """Canonical flags string: feeding it back gives the same configuration.

        Values are quoted as Theano's shlex split reads them back (``-Wl,-rpath,/opt/x`` keeps
        its commas), and ``mode`` is kept where the engine does not imply it: ``engine=pytensor``
        runs PyTensor's default mode, FAST_RUN, whose engine, pytensor-numba, implies NUMBA.
        """
        return format_flags((k, s.value) for k, s in sorted(self.settings.items())
                            if self._in_profile(k, s))

    def _in_profile(self, key: str, setting: Setting) -> bool:
        if not setting.source.startswith(("default", "implied")):
            return True
        return key == "mode" and setting.value != registry.get(self.engine).mode

    def as_json(self) -> dict[str, dict[str, str]]:
        return {k: {"value": s.value, "source": s.source} for k, s in sorted(self.settings.items())}

    def values(self) -> dict[str, str]:
        return {k: s.value for k, s in self.settings.items()}
