"""HTML to plain text: tags stripped, script and style dropped, headings kept.

Headings (``<h1>``..``<h6>``, and ``<title>`` as a top heading) become Markdown
headings so that chunking splits an HTML page at its sections just like a
Markdown file.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROPPED = frozenset({"script", "style", "template", "noscript"})
_HEADINGS = {"title": 1, "h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PARAGRAPHS = frozenset(
    {"p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
     "blockquote", "pre", "table", "ul", "ol", "dl", "figure", "form", "hr"}
)
_LINES = frozenset({"br", "li", "tr", "dt", "dd", "caption", "figcaption"})
_SPACE = re.compile(r"[ \t\r\f\v]+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropping += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        else:
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropping = max(0, self._dropping - 1)
        elif tag in _HEADINGS:
            self.parts.append("\n\n")
        else:
            self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(_SPACE.sub(" ", data.replace("\n", " ")))

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self.parts.append("\n\n")
        elif tag in _LINES:
            self.parts.append("\n")


def html_to_text(html: str) -> str:
    """The readable text of an HTML document, paragraphs separated by blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (_SPACE.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
