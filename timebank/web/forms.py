"""The pages' forms. They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import uuid

from django import forms


def new_idempotency_key() -> str:
    """One per rendered form: a double submit of the same form moves time once."""
    return uuid.uuid4().hex


class Form(forms.Form):
    def _choice(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field
