"""A page's main text, from HTML (trafilatura, BeautifulSoup as the fallback) or PDF (pypdf).

Only the text matters to the watch: menus, footers, scripts and link targets (with their
tracking parameters) never reach it, so they can change without a new snapshot. Nothing
here executes what it reads: trafilatura and BeautifulSoup parse markup with lxml and
drop scripts; pypdf reads text operators and ignores JavaScript actions.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import unicodedata

import lxml.html  # type: ignore[import-untyped]
import trafilatura
from bs4 import BeautifulSoup
from lxml import etree
from pypdf import PdfReader
from pypdf.errors import PdfReadError

# Text trafilatura found shorter than this is not trusted to be the page's main text (a
# price list may be one table, which it sometimes drops); the fallback reads the body.
MIN_MAIN_TEXT = 40
_BOILERPLATE_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form")
_BOILERPLATE_XPATH = "|".join(f"//{tag}" for tag in _BOILERPLATE_TAGS)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{2,}")

logging.getLogger("trafilatura").setLevel(logging.ERROR)
logging.getLogger("pypdf").setLevel(logging.ERROR)


class ExtractionError(ValueError):
    """The bytes could not be read as the kind they claimed to be."""


def canonical_text(text: str) -> str:
    """NFC, one space between words, one newline between lines, no blank lines.

    Whitespace and Unicode composition are how a re-published page differs without saying
    anything new, so the snapshot hash is taken after this.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(line for line in lines if line)).strip()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def html_text(body: bytes) -> str:
    """The main text of an HTML page (boilerplate such as menus and footers left out)."""
    try:
        tree = lxml.html.fromstring(body)
        # trafilatura, favouring recall, keeps a menu that is not a list; what is in
        # these elements is never the policy, so it goes before the main text is sought.
        for element in tree.xpath(_BOILERPLATE_XPATH):
            element.drop_tree()
        main = trafilatura.extract(
            tree,
            include_tables=True,
            include_comments=False,
            include_links=False,
            include_images=False,
            favor_recall=True,
            deduplicate=False,
        )
    except (ValueError, TypeError, LookupError, etree.ParserError):  # odd bytes
        main = None
    if main and len(main.strip()) >= MIN_MAIN_TEXT:
        return canonical_text(main)
    return canonical_text(_soup_text(body))


def _soup_text(body: bytes) -> str:
    soup = BeautifulSoup(body, "lxml")
    for tag in soup.find_all(_BOILERPLATE_TAGS):
        tag.decompose()
    root = soup.body or soup
    return root.get_text("\n")


def pdf_text(body: bytes) -> str:
    """The text of every page of a PDF, page after page."""
    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            raise ExtractionError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(f"unreadable PDF: {exc.__class__.__name__}") from exc
    return canonical_text("\n".join(pages))


def page_text(kind: str, body: bytes) -> str:
    """Dispatch on the fetched kind (``html`` or ``pdf``)."""
    if kind == "pdf":
        return pdf_text(body)
    if kind == "html":
        return html_text(body)
    raise ExtractionError(f"cannot read {kind!r}")
