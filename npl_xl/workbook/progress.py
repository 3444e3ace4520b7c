"""A progress bar for long runs outside Excel (tqdm: it draws nothing on a non-terminal)."""

from __future__ import annotations

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar(done, total)`` draws ``done`` of ``total`` paths on ``stream``.

    The bar starts on the first call and closes when ``done`` reaches ``total`` (a later run
    starts a new one). tqdm shows rate and time left on a terminal and stays silent when the
    stream is a file or a pipe, so logs hold no carriage-return clutter.
    """

    def __init__(self, stream, description: str = "simulating", unit: str = " paths"):
        self.stream, self.description, self.unit = stream, description, unit
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.stream is None or total <= 0:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.stream, disable=None, unit=self.unit,
                             unit_scale=True, desc=self.description, leave=True)
        self._bar.update(min(done, total) - self._bar.n)
        if done >= total:
            self._bar.close()
            self._bar = None
