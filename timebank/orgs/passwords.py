"""The password rules of every login (settings.AUTH_PASSWORD_VALIDATORS), with their messages in Chinese.

Django 5.2 reworded MinimumLengthValidator's message ("at least %d characters") and its own zh_Hans catalogue
still translates only the old wording, so a too-short password was refused in English. The message is ours."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.utils.translation import gettext


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    def get_error_message(self) -> str:
        return gettext("密码太短了，至少要 %(n)d 位。") % {"n": self.min_length}

    def get_help_text(self) -> str:
        return gettext("密码至少要 %(n)d 位。") % {"n": self.min_length}
