"""Stand-in for session3.store.DirectorySessionStore (session3 3.4), standard library only.

Follows the steps recorded in the project's compatibility notes one by one, including the
parts that are unsafe on purpose: save truncates the file *before* taking LOCK_EX, load takes
LOCK_SH and loops (sleeping 0.1 s) while the file is empty or unpickling hits EOFError, and no
session id is checked. The Go store is tested against exactly this behaviour, so do not
"fix" it here.
"""

import fcntl
import os
import os.path
import time
from pickle import dump, load

SLEEPY_TIME = 0.1


class DirectorySessionStore:
    """Store sessions in individual files within a directory."""

    is_multiprocess_safe = False
    is_thread_safe = False
    pickle_protocol = 4

    def __init__(self, directory, create=False):
        directory = os.path.abspath(directory)
        if not os.path.exists(directory):
            if create:
                os.mkdir(directory)
            else:
                raise OSError("error, '%s' does not exist." % (directory,))
        if not os.path.isdir(directory):
            raise OSError("error, '%s' is not a directory." % (directory,))
        self.directory = directory

    def _make_filename(self, id):
        return os.path.join(self.directory, id)

    def save_session(self, session):
        filename = self._make_filename(session.id)
        f = open(filename, "wb")  # O_WRONLY|O_CREAT|O_TRUNC: the file is empty from here...
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # ...until after this lock is granted
        try:
            dump(session, f, self.pickle_protocol)
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()  # buffered bytes reach the file here, after the unlock

    def load_session(self, id, default=None):
        filename = self._make_filename(id)
        finished = False
        while not finished:
            try:
                f = open(filename, "rb")
                fcntl.flock(f.fileno(), fcntl.LOCK_SH)
                if os.stat(f.fileno()).st_size == 0:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                    f.close()
                    time.sleep(SLEEPY_TIME)
                else:
                    try:
                        obj = load(f)
                        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                        f.close()
                        finished = True
                    except EOFError:
                        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                        f.close()
                        time.sleep(SLEEPY_TIME)
            except OSError:
                obj = default
                finished = True
        return obj

    def delete_session(self, session):
        # session3 passes the session object; a bare id is accepted too for scripts.
        id = session if isinstance(session, str) else session.id
        os.unlink(self._make_filename(id))

    def has_session(self, id):
        # session3's SessionStore.has_session: the loaded session itself (truthy) or None.
        return self.load_session(id, None)

    def iter_sessions(self):
        raise NotImplementedError()

    def setup(self):
        pass

    def delete_old_sessions(self, minutes):
        deleted = 0
        remaining = 0
        for sess_id in os.listdir(self.directory):
            pth = self._make_filename(sess_id)
            mtime = os.stat(pth).st_mtime
            inactive_for = (time.time() - mtime) / 60.0
            if inactive_for > minutes:
                os.unlink(pth)
                deleted += 1
            else:
                remaining += 1
        return deleted, remaining
