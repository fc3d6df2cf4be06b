"""Date formats where Django's own do not suit the pages (settings.FORMAT_MODULE_PATH); the rest are Django's."""
