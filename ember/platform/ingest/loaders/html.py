"""HTML: the readable body, without navigation, scripts, styles and page chrome (parsed with lxml)."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
from lxml import etree

from ember.platform.ingest.document import Block, LoadedDocument, LoaderError
from ember.platform.ingest.loaders.text import decode_text

_NOISE_TAGS = (
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
)
_NOISE_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary"}
_NOISE_CLASS = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|sidebar|breadcrumbs?|cookie|skip-link|toc)($|[-_ ])", re.I
)
_BLOCK_TAGS = (
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
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
# XHTML pages start with one; lxml refuses a str that still declares its byte encoding.
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _is_noise(element: etree._Element) -> bool:
    if element.get("role") in _NOISE_ROLES or element.get("aria-hidden") == "true":
        return True
    names = (element.get("class") or "") + " " + (element.get("id") or "")
    return bool(_NOISE_CLASS.search(names))


def _clean(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _drop(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is not None:
        element.drop_tree()


def load_html(path: Path, data: bytes) -> LoadedDocument:
    text = _XML_DECLARATION.sub("", decode_text(data, path), count=1)
    try:
        document = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise LoaderError(f"{path.name}: unreadable HTML ({exc})") from exc
    title = _clean(document.findtext(".//title") or "")
    etree.strip_elements(document, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    for element in list(document.iter(*_NOISE_TAGS)):
        _drop(element)
    for element in [e for e in document.xpath("//*[@role or @class or @id or @aria-hidden]") if _is_noise(e)]:
        _drop(element)
    root = next(iter(document.iter("main", "article")), None)
    if root is None:
        root = document.find("body") if document.find("body") is not None else document
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    for element in root.iter(*_BLOCK_TAGS):
        if next(element.iterancestors(*_BLOCK_TAGS), None) is not None:
            continue  # its text is part of the enclosing block
        raw = element.text_content()
        body = raw.strip("\n") if element.tag == "pre" else _clean(raw.replace("\n", " "))
        if not body.strip():
            continue
        if element.tag[0] == "h" and element.tag[1:].isdigit():
            level = int(element.tag[1:])
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, body))
            title = title or body
            blocks.append(Block(body, tuple(t for _, t in stack), is_heading=True))
        else:
            blocks.append(Block(body, tuple(t for _, t in stack)))
    if not blocks:
        loose = _clean(root.text_content())
        if not loose:
            raise LoaderError(f"{path.name}: no readable text in the HTML body")
        blocks = [Block(line) for line in loose.split("\n")]
    return LoadedDocument(title=title or path.stem, mime_type="text/html", blocks=blocks)
