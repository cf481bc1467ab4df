"""Stand-in for session3.Session: the attributes and methods session3 3.4 sessions have."""

import secrets
import time


def randbytes(nbytes):
    """session3's id and token generator: URL-safe base64 without padding."""
    return secrets.token_urlsafe(nbytes)


class Session:
    MAX_FORM_TOKENS = 32

    def __init__(self, id, remote_address=None):
        self.id = id
        self.user = None
        self._remote_address = remote_address
        self._creation_time = self._access_time = time.time()
        self._form_tokens = []

    def __repr__(self):
        return "<%s at %x: %s>" % (self.__class__.__name__, id(self), self.id)

    def has_info(self):
        return self.user

    def start_request(self):
        pass

    def set_user(self, user):
        self.user = user

    def get_user(self):
        return self.user

    def get_remote_address(self):
        return self._remote_address

    def get_creation_time(self):
        return self._creation_time

    def get_access_time(self):
        return self._access_time

    def _set_access_time(self, resolution):
        now = time.time()
        if now - self._access_time > resolution:
            self._access_time = now

    def create_form_token(self):
        token = randbytes(16)
        self._form_tokens.append(token)
        extra = len(self._form_tokens) - self.MAX_FORM_TOKENS
        if extra > 0:
            del self._form_tokens[:extra]
        return token

    def has_form_token(self, token):
        return token in self._form_tokens

    def remove_form_token(self, token):
        self._form_tokens.remove(token)
