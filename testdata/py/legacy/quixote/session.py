"""Stand-in for quixote.session: Quixote's own Session class, stdlib only."""

import secrets
import time


def randbytes(nbytes):
    return secrets.token_urlsafe(nbytes)


class Session:
    MAX_FORM_TOKENS = 16

    def __init__(self, id, remote_address=None):
        self.id = id
        self.user = None
        self._remote_address = remote_address
        self._creation_time = self._access_time = time.time()
        self._form_tokens = []
        self._csrf_token = None

    def has_info(self):
        return bool(self.user or self._form_tokens or self._csrf_token)

    def start_request(self):
        # Quixote's sets REMOTE_USER in the request's environ; the stand-in has no
        # request object, and session managers call this hook on every request.
        pass

    def get_remote_address(self):
        return self._remote_address

    def get_creation_time(self):
        return self._creation_time

    def get_access_time(self):
        return self._access_time

    def set_user(self, user):
        self.user = user

    def get_user(self):
        return self.user

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

    def get_csrf_token(self):
        if self._csrf_token is None:
            self._csrf_token = randbytes(16)
        return self._csrf_token
