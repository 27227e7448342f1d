"""A run's drift history as its record keeps it (written by :mod:`labctl.runner.drift`): where it
lives in the record, what a report says about it, and its plot.

Each check is a row of table ``drift_checks``: ``number``, ``first_index`` (the next input, -1 after
the last), ``inputs_done``, ``wall_time_s``, ``camera_time_s``, per channel ``gain``, ``offset_dn``
and ``residual`` against the baseline and ``excess`` (the residual beyond the capture noise), ``epoch``
(the correction in force after it), ``corrected`` and ``uncorrectable``. Column ``drift_epoch`` says which correction each input was read under.
Since format 2 (attribute ``drift``'s ``format``) also: per channel ``slope`` (the least-squares fit
whose residual that is; ``gain`` is then the light ratio above the dark level), ``gain_se`` and
``channel_tolerance``; ``common_gain`` (the mean over channels), ``common_se``, ``common_tolerance``
and ``follow_up`` (corrected below the tolerances, after a correction). Since the re-capture rule
(same format 2) also ``suspect`` (the fit left more than the limit: the references were captured
again at once) and per channel ``recheck_excess`` (that re-capture's excess; 0 when none). Older
records lack them and read as before; a resumed one goes on without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labctl.records.run_record import RunRecord

CHECKS_TABLE = "drift_checks"
EPOCH_COLUMN_NAME = "drift_epoch"
#: event kinds the monitor logs: a gain change beyond its tolerance, a change no gain can undo (both
#: captures of a check beyond the residual limit), a check beyond it whose immediate re-capture was not
DRIFT_EVENT = "drift"
UNCORRECTABLE_EVENT = "drift_uncorrectable"
SUSPECT_EVENT = "drift_suspect"
DRIFT_EVENTS = (DRIFT_EVENT, UNCORRECTABLE_EVENT, SUSPECT_EVENT)
#: attribute holding the monitor's settings, its capture noise and which inputs are its references
SETTINGS_ATTR = "drift"


@dataclass(frozen=True)
class DriftHistory:
    """The checks of one run (a structured array, one row per check) and the monitor's settings."""

    checks: np.ndarray
    settings: dict[str, Any]
    started_unix_s: float

    @property
    def corrections(self) -> int:
        return int(self.checks["corrected"].sum())

    @property
    def uncorrectable(self) -> int:
        return int(self.checks["uncorrectable"].sum())

    @property
    def max_gain_change(self) -> float:
        """Largest |gain − 1| against the baseline, over checks and channels."""
        return float(np.abs(self.checks["gain"] - 1).max()) if self.checks.size else 0.0

    @property
    def suspects(self) -> int:
        """Checks re-captured because the fit left more than the limit (0 for records before the rule)."""
        return int(self.checks["suspect"].sum()) if "suspect" in (self.checks.dtype.names or ()) else 0

    @property
    def max_excess(self) -> float:
        """Largest share of a readout the gain fit left beyond the capture noise."""
        return float(self.checks["excess"].max()) if self.checks.size else 0.0

    def summary(self) -> dict[str, Any]:
        return {"drift_checks": int(self.checks.size), "drift_corrections": self.corrections,
                "drift_uncorrectable": self.uncorrectable, "drift_max_gain_change": self.max_gain_change,
                "drift_max_excess": self.max_excess, "drift_suspects": self.suspects}

    def describe(self) -> str:
        """One line for a report table."""
        return (f"{self.checks.size} check(s) every {self.settings.get('every_batches')} batch(es), "
                f"{self.corrections} correction(s), {self.uncorrectable} beyond a gain ({self.suspects} suspect(s) re-captured); gain moved up to "
                f"{100 * self.max_gain_change:.2f} %, the fit left up to {100 * self.max_excess:.2f} % beyond noise")


def read_drift_history(record: RunRecord) -> DriftHistory | None:
    """The record's drift checks, or None for a run made without a drift monitor."""
    saved = record.attr(SETTINGS_ATTR)
    checks = record.table(CHECKS_TABLE)
    if saved is None or checks is None:
        return None
    settings = saved.get("settings", {}) if isinstance(saved, dict) else {}
    return DriftHistory(checks, settings, float(record.attr("created_unix_s")))


def save_drift_png(history: DriftHistory, path: Path, title: str) -> Path:
    """Each channel's gain against its baseline, and what its gain fit left beyond the capture noise,
    over the run's time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checks = history.checks
    minutes = (checks["wall_time_s"] - history.started_unix_s) / 60
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    top.plot(minutes, 100 * (checks["gain"] - 1), marker=".", linewidth=0.8)
    for t in minutes[checks["corrected"]]:
        top.axvline(t, color="0.8", linewidth=0.6, zorder=0)
    if "common_gain" in (checks.dtype.names or ()):
        common = checks["common_gain"]
        # the correction in force before each check: what its change and threshold are measured from
        in_force = np.ones(common.size)
        for i in range(1, common.size):
            in_force[i] = common[i - 1] if checks["corrected"][i - 1] else in_force[i - 1]
        top.plot(minutes, 100 * (common - 1), color="k", linewidth=2, label="common mode")
        top.fill_between(minutes, 100 * (in_force * (1 - checks["common_tolerance"]) - 1),
                         100 * (in_force * (1 + checks["common_tolerance"]) - 1), color="0.88", zorder=0,
                         step="mid", label="not flagged (from the correction in force)")
        top.legend(loc="lower left", fontsize="small")
    top.set_ylabel("gain vs baseline (%)")
    top.set_title(title)
    bottom.plot(minutes, 100 * checks["excess"], marker=".", linewidth=0.8)
    limit = history.settings.get("residual_limit")
    if limit is not None:
        bottom.axhline(100 * float(limit), color="r", linestyle="--", linewidth=0.8, label="limit: beyond a gain")
    flagged = checks["uncorrectable"]
    if flagged.any():
        bottom.plot(minutes[flagged], 100 * checks["excess"][flagged].max(axis=1), "rx", label="stopped")
    if "recheck_excess" in (checks.dtype.names or ()) and checks["suspect"].any():
        again = checks["suspect"]
        bottom.plot(minutes[again], 100 * checks["recheck_excess"][again].max(axis=1), "ko", fillstyle="none",
                    label="re-capture of a suspect")
    if limit is not None or flagged.any() or ("suspect" in (checks.dtype.names or ()) and checks["suspect"].any()):
        bottom.legend(loc="upper left")
    bottom.set_ylabel("fit residual beyond noise (% of readout)")
    bottom.set_xlabel("minutes since the run started (one line per channel; grey: corrections)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
