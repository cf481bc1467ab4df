"""A throw-away PostgreSQL cluster for the tests, or the one named by QXBRIDGE_PG_DSN.

The cluster is made like the Go tests' (internal/testpg): Debian's PostgreSQL
programs, initdb in a temporary directory, the server listening on a UNIX socket
there only, as the postgres user when the tests run as root. Without PostgreSQL the
tests are skipped, or fail when CI=true.
"""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

import pytest

DSN_ENV = "QXBRIDGE_PG_DSN"


def in_ci():
    return os.environ.get("CI", "") not in ("", "0", "false")


def missing(what):
    if in_ci():
        pytest.fail("%s is required when CI=true but is not available" % what, pytrace=False)
    pytest.skip("%s not available" % what)


class Cluster:
    def __init__(self):
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))
        if not dirs:
            missing("PostgreSQL (apt-get install postgresql)")
        self.bin = os.path.dirname(dirs[-1])
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                missing("the postgres user to run PostgreSQL as")
        self.dir = tempfile.mkdtemp(prefix="qxbridge-pg-py-")
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.dsn = "postgres:///postgres?" + urllib.parse.urlencode(
            {"host": self.dir, "port": "5432", "user": "postgres", "sslmode": "disable"})
        self.proc = None
        self.run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync")
        self.start()

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def _kw(self):
        kw = {"cwd": self.dir, "env": dict(os.environ, LC_ALL="C", TZ="UTC")}
        if self.user:
            kw.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return kw

    def run(self, prog, *args):
        return subprocess.run([os.path.join(self.bin, prog), *args], check=True,
                              capture_output=True, **self._kw())

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-k", self.dir, "-p", "5432",
             "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "shared_buffers=16MB"],
            stdout=log, stderr=log, **self._kw())
        log.close()
        deadline = time.monotonic() + 120
        while subprocess.run([os.path.join(self.bin, "pg_isready"), "-q", "-h", self.dir, "-p", "5432"],
                             **self._kw()).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postgres did not start:\n" + open(os.path.join(self.dir, "server.log")).read())
            time.sleep(0.02)

    def stop(self, sig=signal.SIGINT):
        if self.proc is not None:
            self.proc.send_signal(sig)
            self.proc.wait(120)
            self.proc = None

    def remove(self):
        self.stop(signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster():
    """The test cluster (None when QXBRIDGE_PG_DSN names a server: then tests that
    restart the server are skipped)."""
    if os.environ.get(DSN_ENV):
        yield None
        return
    c = Cluster()
    try:
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="session")
def dsn(cluster):
    return cluster.dsn if cluster else os.environ[DSN_ENV]


@pytest.fixture
def table(request, dsn):
    """A table name of the test's own, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = "py_" + re.sub(r"\W", "_", request.node.name.lower())[:50]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    yield name
