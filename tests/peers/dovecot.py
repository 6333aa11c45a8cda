"""A throwaway dovecot IMAP server on 127.0.0.1 for integration tests.

Debian's ``dovecot-imapd`` (apt packages: dovecot-core, dovecot-imapd) is started with a
config written into a temp dir: plaintext auth on loopback, one passwd-file user, Maildir
storage in the temp dir, and an optional self-signed certificate for STARTTLS/IMAPS tests.
Dovecot refuses to run its login process as root, so login runs as ``dovenull``, internal
services as ``dovecot``, and mail access as ``dovecot`` too; the temp dirs are handed to them.

Use it with ``from tests.peers.dovecot import dovecot  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "inbox@example.test"
PASSWORD = "s3cret-test"
MAX_USERS = 200


@dataclass(frozen=True)
class DovecotServer:
    host: str
    port: int
    tls_port: int
    username: str
    password: str
    root: Path
    cert_path: Path | None

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.username, self.password)
        return conn

    def append(self, mailbox: str, raw: bytes) -> None:
        """Deliver one message the way a real MTA's LDA would (server assigns the UID)."""
        conn = self.client()
        try:
            conn.create(f'"{mailbox}"')
            typ, data = conn.append(f'"{mailbox}"', None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def deliver(self, messages: list[bytes]) -> None:
        """Drop messages into the INBOX Maildir as a local delivery agent would (fast bulk)."""
        owner = pwd.getpwnam("dovecot")
        directory = self.root / "mail" / self.username.split("@", 1)[0]
        box = mailbox.Maildir(directory, create=True)
        for raw in messages:
            box.add(raw)
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_banner(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
            if s.recv(64).startswith(b"* OK"):
                return
        time.sleep(0.05)
    raise TimeoutError(f"dovecot did not greet on port {port}")


def _self_signed_cert(directory: Path) -> Path | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert = directory / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(directory / "key.pem"), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def _config(root: Path, port: int, tls_port: int, cert: Path | None) -> str:
    mail_user = pwd.getpwnam("dovecot")
    ssl_block = (
        f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{root / 'key.pem'}\n" if cert else "ssl = no\n"
    )
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_block}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {mail_user.pw_uid}
mail_location = maildir:{root}/mail/%n
mail_privileged_group =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port if cert else 0}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextlib.contextmanager
def run_dovecot(root: Path) -> Iterator[DovecotServer]:
    """Start dovecot with its state under ``root`` and stop it (and its children) after."""
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    mail_user = pwd.getpwnam("dovecot")
    for sub in ("mail", "home"):
        os.chown(root / sub, mail_user.pw_uid, mail_user.pw_gid)
    cert = _self_signed_cert(root)
    # Users are created up front: dovecot's passwd-file reload after a change is not immediate.
    users = [USER] + [f"user{n}@example.test" for n in range(1, MAX_USERS + 1)]
    (root / "passwd").write_text(
        "".join(f"{user}:{{PLAIN}}{PASSWORD}\n" for user in users), encoding="utf-8"
    )
    port, tls_port = _free_port(), _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls_port, cert), encoding="utf-8")
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        try:
            _wait_for_banner(port, time.monotonic() + 10)
        except TimeoutError:
            proc.terminate()
            out = proc.communicate(timeout=5)[0].decode(errors="replace")
            log = (
                (root / "dovecot.log").read_text(errors="replace")
                if (root / "dovecot.log").exists()
                else ""
            )
            raise RuntimeError(f"dovecot failed to start:\n{out}\n{log}") from None
        yield DovecotServer("127.0.0.1", port, tls_port, USER, PASSWORD, root, cert)
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM to the master stops its children too
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _dovecot_available() -> bool:
    if not Path(DOVECOT).exists():
        return False
    try:
        pwd.getpwnam("dovenull")
        pwd.getpwnam("dovecot")
    except KeyError:
        return False
    return Path("/usr/lib/dovecot/imap").exists()


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One dovecot per test session: starting and stopping it costs about two seconds.

    Not under pytest's tmp_path: that tree is mode 0700 for root, which the dovecot and
    dovenull users cannot traverse.
    """
    if not _dovecot_available():
        message = "dovecot-imapd is not installed (apt-get install dovecot-imapd)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    with (
        tempfile.TemporaryDirectory(prefix="accountflow-dovecot-") as tmp,
        run_dovecot(Path(tmp)) as server,
    ):
        yield server


_user_numbers = itertools.count(1)


@pytest.fixture()
def dovecot(dovecot_server: DovecotServer) -> DovecotServer:
    """A fresh user (own Maildir) per test, so UIDs and UIDVALIDITY start clean."""
    number = next(_user_numbers)
    assert number <= MAX_USERS, "raise MAX_USERS in tests/peers/dovecot.py"
    return replace(dovecot_server, username=f"user{number}@example.test")
