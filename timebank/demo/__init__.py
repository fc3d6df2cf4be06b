"""Seeded demo data: two banks, demo logins, members and some ledger history (see `generator`)."""
