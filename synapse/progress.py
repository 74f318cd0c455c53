"""A tiny, dependency-free progress bar for long loops.

Two ways to use it::

    for batch in progress(batches, total=len(batches), desc="task 2/5"):
        ...

    with Progress(total=n_steps, desc="epoch 3") as bar:
        for step in range(n_steps):
            ...
            bar.update(1, loss=0.123)

It writes to stderr, at most ~4 times a second, a line like
``task 2/5 [#####.....]  47/100  0:03 < 0:04  loss=0.123``. When stderr is not a terminal
(a log file, a CI job, a joblib worker) it prints a plain line at most every ``log_interval``
seconds (30 by default: a long task shows up in a log while it runs) and one final line
(``final_line=False``: none, where the caller logs a line of its own at the end);
``enabled=False`` silences it completely.
"""
import sys
import time

__all__ = ["Progress", "progress", "format_seconds"]


def format_seconds(s):
    """``75.2 -> '1:15'``, ``3725 -> '1:02:05'``; ``None`` or a non-finite value -> ``'?'``."""
    if s is None or s != s or s in (float("inf"), float("-inf")):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _format_value(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class Progress:
    """Counts steps and redraws a one-line status on stderr.

    ``total`` may be None (unknown length: no bar, no ETA). ``min_interval`` is the least time in
    seconds between two redraws. ``stream`` defaults to ``sys.stderr`` read at construction.
    """

    def __init__(self, total=None, desc="", enabled=True, stream=None, min_interval=0.25,
                 width=20, log_interval=30.0, final_line=True):
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.min_interval = min_interval
        self.log_interval = log_interval
        self.width = width
        self.final_line = final_line     # False: off a terminal, the caller logs its own line
        self.n = 0
        self.postfix = {}
        self.start = time.monotonic()
        self._last_draw = -float("inf")
        self._last_log = self.start
        self._closed = False
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(enabled and isatty is not None and isatty())

    def update(self, n=1, **postfix):
        """Advance by ``n`` steps; keyword arguments replace the shown postfix values."""
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self.live:
            now = time.monotonic()
            if now - self._last_draw >= self.min_interval:
                self._last_draw = now
                self._write("\r" + self.line(now) + "\033[K")
        elif self.enabled and self.log_interval is not None:
            now = time.monotonic()
            if now - self._last_log >= self.log_interval:
                self._last_log = now
                self._write(self.line(now) + "\n")

    def line(self, now=None):
        """The status line as text (no carriage return)."""
        now = time.monotonic() if now is None else now
        elapsed = now - self.start
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * self.width)
            parts.append("[" + "#" * filled + "." * (self.width - filled) + "]")
            parts.append(f"{self.n}/{self.total}")
            eta = elapsed * (self.total - self.n) / self.n if self.n else None
            parts.append(f"{format_seconds(elapsed)} < {format_seconds(eta)}")
        else:
            parts.append(f"{self.n}")
            parts.append(format_seconds(elapsed))
        if elapsed > 0 and self.n:
            rate = self.n / elapsed
            parts.append(f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.1f}s/it")
        if self.postfix:
            parts.append(" ".join(f"{k}={_format_value(v)}" for k, v in self.postfix.items()))
        return "  ".join(parts)

    def close(self):
        """Print the final line once (also when stderr is not a terminal, unless disabled)."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled or not (self.live or self.final_line):
            return
        prefix = "\r" if self.live else ""
        suffix = "\033[K\n" if self.live else "\n"
        self._write(prefix + self.line() + suffix)

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop training
            self.enabled = self.live = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def progress(iterable, total=None, desc="", enabled=True, **kwargs):
    """Yield from ``iterable`` while showing a :class:`Progress` line; ``total`` defaults to
    ``len(iterable)`` where that exists."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    with Progress(total=total, desc=desc, enabled=enabled, **kwargs) as bar:
        for item in iterable:
            yield item
            bar.update(1)
