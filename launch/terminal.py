"""What the user sees: one line per event, and on a terminal a live
status line within long steps (an epoch), rewritten in place."""

import shutil
import sys


class Terminal:
    """Prints lines to standard output (looked up at each call); shows
    `status` text only when it is a terminal, so piped output keeps one
    line per event."""

    def __init__(self):
        self._showing = False

    @property
    def live(self) -> bool:
        return sys.stdout.isatty()

    def say(self, line: str) -> None:
        if self._showing:
            sys.stdout.write("\r\x1b[K")
            self._showing = False
        print(line, flush=True)

    def status(self, text: str) -> None:
        if not self.live:
            return
        width = shutil.get_terminal_size().columns - 1
        sys.stdout.write("\r\x1b[K" + text[:width])
        sys.stdout.flush()
        self._showing = True

    def status_sink(self):
        """`status` for a run's live progress, or None off a terminal."""
        return self.status if self.live else None


TERMINAL = Terminal()
