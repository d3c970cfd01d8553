"""Start a private Mosquitto on a free loopback port, so tests never depend on shared broker state."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """``users`` (name -> password) turns anonymous access off and writes a ``mosquitto_passwd`` file;
    ``tls`` (CA, certificate, key paths) makes the listener TLS-only."""

    def __init__(self, workdir: Path, port: int | None = None, *, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        assert MOSQUITTO is not None, "mosquitto binary not installed (apt-get install mosquitto)"
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        access = "allow_anonymous true\n"
        if users:
            assert MOSQUITTO_PASSWD is not None, "mosquitto_passwd not installed (apt-get install mosquitto)"
            passwd = workdir / "passwd"
            for i, (name, password) in enumerate(users.items()):
                create = ["-c"] if i == 0 else []
                subprocess.run([MOSQUITTO_PASSWD, *create, "-b", str(passwd), name, password], check=True,
                               capture_output=True)  # fmt: skip
            passwd.chmod(0o600)
            access = f"allow_anonymous false\npassword_file {passwd}\n"
        if tls is not None:
            ca, cert, key = tls
            access += f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{access}persistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\n"
            # As root, Mosquitto drops to user "mosquitto", which cannot write the test's temp dir.
            f"user {getpass.getuser()}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: persists sessions for the restart test
            self.proc.wait(timeout=10)
        self.proc = None
