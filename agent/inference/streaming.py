"""Stop strings over streamed text: hold back what might be the start of a stop string."""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    """Accumulates streamed text, cuts it at the first stop string, releases only safe text."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._buffer = ""
        self._emitted = 0
        self.hit = False

    @property
    def text(self) -> str:
        """The text so far, without any stop string or what followed it."""
        return self._buffer

    def feed(self, piece: str, *, final: bool = False) -> tuple[str, bool]:
        """Add ``piece``; return (text now safe to show, whether a stop string was found)."""
        if self.hit:
            return "", True
        self._buffer += piece
        cut = min((i for i in (self._buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self._buffer = self._buffer[:cut]
            self.hit = True
            safe = cut
        else:
            safe = len(self._buffer) if final else len(self._buffer) - self._held_back()
        emitted = self._buffer[self._emitted : safe]
        self._emitted = max(self._emitted, safe)
        return emitted, self.hit

    def _held_back(self) -> int:
        """Length of the longest buffer suffix that is a proper prefix of a stop string."""
        best = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self._buffer)), best, -1):
                if self._buffer.endswith(stop[:size]):
                    best = size
                    break
        return best
