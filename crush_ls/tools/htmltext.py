"""HTML to plain text or Markdown for `fetch`, with the standard library only.

Good enough for a model to read a page: headings, paragraphs, lists, links,
emphasis and code survive; scripts, styles and the head do not.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIPPED = {"script", "style", "noscript", "head", "svg", "template", "iframe"}
BLOCKS = {"p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "table",
          "tr", "ul", "ol", "blockquote", "form", "figure", "dl", "dt", "dd", "hr"}
EMPHASIS = {"strong": "**", "b": "**", "em": "*", "i": "*"}


class _Converter(HTMLParser):
    def __init__(self, markdown: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.markdown = markdown
        self.out: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.links: list[str | None] = []

    def _md(self, text: str) -> None:
        if self.markdown:
            self.out.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skip_depth += 1
        elif self.skip_depth:
            return
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("\n\n")
            self._md("#" * int(tag[1]) + " ")
        elif tag in BLOCKS:
            self.out.append("\n\n")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "pre":
            self.pre_depth += 1
            self.out.append("\n\n")
            self._md("```\n")
        elif tag == "code" and not self.pre_depth:
            self._md("`")
        elif tag in EMPHASIS:
            self._md(EMPHASIS[tag])
        elif tag == "a":
            href = dict(attrs).get("href")
            self.links.append(href)
            if href:
                self._md("[")
        elif tag in ("td", "th"):
            self.out.append(" | " if self.markdown else "\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif self.skip_depth:
            return
        elif tag in BLOCKS or tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("\n\n")
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
            self._md("\n```")
            self.out.append("\n\n")
        elif tag == "code" and not self.pre_depth:
            self._md("`")
        elif tag in EMPHASIS:
            self._md(EMPHASIS[tag])
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href:
                self._md(f"]({href})")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.out.append(data)
            return
        data = re.sub(r"\s+", " ", data)
        if not self.out or self.out[-1].endswith("\n"):
            data = data.lstrip()
        self.out.append(data)

    def result(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(html: str) -> str:
    parser = _Converter(markdown=False)
    parser.feed(html)
    parser.close()
    return parser.result()


def html_to_markdown(html: str) -> str:
    parser = _Converter(markdown=True)
    parser.feed(html)
    parser.close()
    return parser.result()
