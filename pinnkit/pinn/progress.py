"""Progress of a training phase: a tqdm bar on a terminal; elsewhere (CI, nohup, a scheduler's
log, where no bar is drawn) a line to `logging` (logger "pinnkit.train") every
``progress_seconds``, with the rate and an ETA counted from the phase's start."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

from tqdm.auto import tqdm

from ..errors import TrainingError

__all__ = ["Progress", "record"]

_log = logging.getLogger("pinnkit.train")


def record(history: dict, problem: str, phase: int, step: int, loss: float, values: dict,
           seconds: float, lr: float, hint: str) -> None:
    """Append one logged step to ``history``: step, phase, loss, time, lr and loss_<term> for
    each of ``values`` ({term: float}). A non-finite loss raises `TrainingError` naming the
    non-finite term(s), with ``hint`` (what to try) at the end."""
    if not math.isfinite(loss):
        bad = [k for k, v in values.items() if not math.isfinite(v)] or ["total"]
        raise TrainingError(f"problem {problem!r}: loss became non-finite at "
                            f"{'L-BFGS iteration' if phase else 'step'} {step} "
                            f"(term(s) {', '.join(bad)}); {hint}")
    for key, v in (("step", step), ("phase", phase), ("loss", loss), ("time", seconds), ("lr", lr)):
        history[key].append(v)
    for k, v in values.items():
        history[f"loss_{k}"].append(v)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):     # no isatty, or a closed stream
        return False


class Progress:
    """One phase (``what``: "Adam step", "L-BFGS iteration", ...) of ``total`` steps starting
    at ``start``; silent when ``quiet`` or on a data-parallel rank other than 0."""

    def __init__(self, problem: str, tag: str, what: str, unit: str, start: int, total: int,
                 quiet: bool, main: bool, every_seconds: float) -> None:
        self.problem, self.what, self.unit, self.total = problem, what, unit, total
        self.every = every_seconds
        self.bar = tqdm(total=total, initial=start, desc=f"{problem} {tag}",
                        disable=True if quiet or not main else None, leave=False,
                        dynamic_ncols=True)
        self.start = (start, time.perf_counter())
        self.last = -math.inf
        self.lines = not quiet and main and not _is_tty(sys.stderr)

    def show(self, step: int, loss: float) -> None:
        """Move the bar to ``step`` with ``loss`` beside it."""
        self.bar.set_postfix(loss=f"{loss:.3e}", refresh=False)
        self.bar.update(min(step, self.total) - self.bar.n)

    def log(self, step: int, loss: float, values: dict) -> None:
        """A progress line (not on a terminal), at most every ``every_seconds`` and at the end."""
        if not self.lines:
            return
        now = time.perf_counter()
        if now - self.last < self.every and step < self.total:
            return
        self.last = now
        step0, t_start = self.start
        rate = (step - step0) / max(now - t_start, 1e-9)
        eta = f"{(self.total - step) / rate:.0f} s" if rate > 0 else "?"
        # slow steps (an operator's epochs) as seconds per step, not "0.0 epoch/s"
        speed = (f"{rate:.1f} {self.unit}/s" if rate >= 1 or rate == 0
                 else f"{1 / rate:.1f} s/{self.unit}")
        terms = ", ".join(f"{k} {v:.3e}" for k, v in values.items())
        _log.info("%s %s %d/%d: loss %.3e (%s); %s, ETA %s", self.problem, self.what,
                  step, self.total, loss, terms, speed, eta)

    def close(self) -> None:
        self.bar.close()
