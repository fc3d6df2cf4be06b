"""Path converters every app's pages use. Importing this module registers them."""

from django.urls import register_converter


class IdConverter:
    """Like <int:…> but bounded: an id too large for a bigint is a 404, not a database error."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
