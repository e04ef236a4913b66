"""HTML: the readable body, without navigation, scripts, styles and page chrome."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from ember.platform.ingest.document import Block, LoadedDocument, LoaderError
from ember.platform.ingest.loaders.text import decode_text

_NOISE_TAGS = [
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "template",
    "svg",
    "iframe",
    "button",
    "select",
    "head",
]
_NOISE_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary"}
_NOISE_CLASS = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|sidebar|breadcrumbs?|cookie|skip-link|toc)($|[-_ ])", re.I
)
_BLOCK_TAGS = [
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "li",
    "pre",
    "blockquote",
    "td",
    "th",
    "dt",
    "dd",
    "figcaption",
    "caption",
]
_SPACES = re.compile(r"[ \t\r\f\v]+")


def _is_noise(tag: Tag) -> bool:
    if tag.get("role") in _NOISE_ROLES or tag.get("aria-hidden") == "true":
        return True
    names = " ".join(tag.get("class") or []) + " " + (tag.get("id") or "")
    return bool(_NOISE_CLASS.search(names))


def _clean(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def load_html(path: Path, data: bytes) -> LoadedDocument:
    soup = BeautifulSoup(decode_text(data, path), "lxml")
    title_tag = soup.find("title")
    title = _clean(title_tag.get_text()) if title_tag else ""
    for tag in soup.find_all(_NOISE_TAGS):
        tag.decompose()
    for tag in soup.find_all(_is_noise):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    for element in root.find_all(_BLOCK_TAGS):
        if element.find_parent(_BLOCK_TAGS) is not None:
            continue  # its text is part of the enclosing block
        text = element.get_text("\n") if element.name == "pre" else _clean(element.get_text(" "))
        if not text.strip():
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            level = int(element.name[1:])
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            title = title or text
            blocks.append(Block(text, tuple(t for _, t in stack), is_heading=True))
        else:
            blocks.append(Block(text, tuple(t for _, t in stack)))
    if not blocks:
        loose = _clean(root.get_text("\n"))
        if not loose:
            raise LoaderError(f"{path.name}: no readable text in the HTML body")
        blocks = [Block(p) for p in loose.split("\n")]
    return LoadedDocument(title=title or path.stem, mime_type="text/html", blocks=blocks)
