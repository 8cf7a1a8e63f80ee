"""Ranking a tune's measurements: eligible (measured ok, parity ok) fastest first."""

from __future__ import annotations

from ..bench import results as res


def verdict(m: res.Measurement) -> str:
    """``ok`` (eligible), the bench status, why parity rejected it, or (halving) the rung it
    dropped out at before parity was checked."""
    if m.status != "ok":
        return m.status
    parity = (m.extra or {}).get("parity") or {}
    halving = (m.extra or {}).get("halving")
    if not parity and halving:
        return f"dropped at rung {halving.get('rung', 0)}"
    if parity.get("status") != "ok":
        return f"rejected: parity {parity.get('status') or 'not run'}"
    return "ok"


def rank(measurements) -> list[res.Measurement]:
    """Eligible points fastest first, then the rest (fastest first) below them."""
    def speed(m):
        return -(m.seq_per_s or 0.0)
    good = sorted((m for m in measurements if verdict(m) == "ok" and m.seq_per_s), key=speed)
    rest = sorted((m for m in measurements if m not in good), key=speed)
    return good + rest


def parity_error(m: res.Measurement) -> str:
    p = (m.extra or {}).get("parity") or {}
    if "max_rel" not in p:
        return "-"
    value = p["max_rel"]
    return f"{value:.1e}" if isinstance(value, float) else str(value)
