"""Server-sent events (the `text/event-stream` format) read line by line: a pure parser.

Only what `events tail` needs from the WHATWG rules: `event`, `data` (joined with newlines
when repeated), `id`, comment lines (`: keep-alive`) ignored, a blank line ending a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None


@dataclass
class Parser:
    """Feed it lines (without line ends); a complete message comes back at its blank line."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None
    last_id: str | None = None  # the last id seen (the server does not resume from it)

    def feed(self, line: str) -> Message | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None  # `retry` and unknown fields are ignored, as the rules say

    def _dispatch(self) -> Message | None:
        if self._id is not None:
            self.last_id = self._id
        if not self._data:
            self._event, self._id = "", None
            return None
        message = Message(self._event or "message", "\n".join(self._data), self._id)
        self._event, self._data, self._id = "", [], None
        return message
