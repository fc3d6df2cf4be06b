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


class IsoDateConverter:
    """A day as YYYY-MM-DD (a day's sheet); a date that does not exist is the view's 404."""

    regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(IsoDateConverter, "isodate")
