"""Signals while training: SIGINT/SIGTERM stop the trainer at its next consistent point."""

from __future__ import annotations

import signal
import threading

__all__ = ["SignalFlag", "Abort"]


class Abort(Exception):
    """Raised inside the L-BFGS closure once a signal has arrived (the chunk is undone)."""


class SignalFlag:
    """While training: SIGINT and SIGTERM only record that they arrived, so the trainer can
    stop at the next consistent point (after a whole Adam step, or back at the start of the
    L-BFGS chunk) and checkpoint there. A second signal stops at once (KeyboardInterrupt,
    no new checkpoint). Installed only in the main thread, not over an ignored signal (a
    background job started with SIGINT ignored keeps ignoring it); the previous handlers
    come back afterwards."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> "SignalFlag":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                try:
                    if signal.getsignal(s) is not signal.SIG_IGN:
                        self._old[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
