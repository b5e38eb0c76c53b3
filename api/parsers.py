"""The API's JSON parser: DRF's, with one more refusal."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """JSON nested deeper than Python's parser can follow (a few kilobytes of '[') is a 400 with a
    sentence, not a RecursionError and a 500. The size limit is DRF's: DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("The JSON in the request is nested too deeply.")) from None
