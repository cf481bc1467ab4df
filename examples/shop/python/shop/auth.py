"""Accounts: the logged-in user is a User object in session.user."""

import hmac
from datetime import datetime, timezone


class User:
    def __init__(self, login, name, email, since):
        self.login = login
        self.name = name
        self.email = email
        self.since = since  # an aware datetime: when the account was opened

    def __str__(self):
        return self.login


# login: (password, name, email, since). A real shop keeps these in its database.
ACCOUNTS = {
    "ann": ("tea4two", "Ann Smith", "ann@example.org", datetime(2021, 3, 14, 9, 26, 53, tzinfo=timezone.utc)),
    "bob": ("mugs", "Bob Jones", "bob@example.org", datetime(2024, 11, 2, 18, 0, tzinfo=timezone.utc)),
}


def authenticate(login, password):
    """The User for a login and password, or None."""
    account = ACCOUNTS.get(login or "")
    if account is None or not hmac.compare_digest(account[0].encode(), (password or "").encode()):
        return None
    return User(login, account[1], account[2], account[3])
