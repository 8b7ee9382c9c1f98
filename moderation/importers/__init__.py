"""Importing comments from WordPress and Disqus export files, and exporting a site's comments."""

from __future__ import annotations

from moderation.importers.common import ImportFailed, ImportSummary, run_import
from moderation.importers.disqus import read_disqus
from moderation.importers.export import export_ndjson, export_wxr
from moderation.importers.wordpress import read_wxr

__all__ = [
    "ImportFailed",
    "ImportSummary",
    "export_ndjson",
    "export_wxr",
    "read_disqus",
    "read_wxr",
    "run_import",
]
