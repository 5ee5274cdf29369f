"""XRootD data servers standing in for the two sites: beamline source and HPC-center destination.

Debian's ``xrootd`` (5.5) runs as an unprivileged user, with third-party copy (the destination
pulls with ``xrdcp --server``, or over HTTP-TPC when given a PKI) and adler32 checksums. XRootD 5.5 has no listen-address
directive, so each server accepts connections from the local host only (``xrd.allow host
localhost``): nothing outside the machine can use it.

Usage::

    python -m facility.xrootd up   [--base var/xrootd] [--source-port 1094] [--dest-port 1095]
    python -m facility.xrootd down [--base var/xrootd]

``up`` prints the two root URLs; the source serves ``<base>/source`` (put experiment folders
there), the destination serves ``<base>/dest`` (the HPC scratch).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from facility.private_files import write_private

SERVICE_USER = "xrootd"
PKI_FILES = ("ca.pem", "server.pem", "server.key")
XROOTD = "/usr/bin/xrootd"
XRDCP = "/usr/bin/xrdcp"


def ensure_service_user(name: str = SERVICE_USER) -> str | None:
    """Return the user the daemons should drop to, creating a system user if we are root.

    Parameters
    ----------
    name : str
        System user to run the daemons as.

    Returns
    -------
    str or None
        ``name`` when running as root (the daemon is started with ``-R name``); ``None`` when
        already unprivileged (the daemon simply runs as the current user).
    """
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
    return name


def hand_over(path: Path, user: str | None) -> None:
    """Make ``path`` (a directory tree) owned by ``user`` so the daemon can read and write it."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, _dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, file) for file in files)]:
            try:
                os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
            except FileNotFoundError:  # a daemon's socket or lock vanished meanwhile
                pass


def local_pki(directory: Path, user: str | None = None) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for localhost/127.0.0.1 signed by it: (ca, cert, key).

    XRootD 5.5 loads its HTTP third-party-copy handler only with TLS on; the CA file is what
    clients (and the destination server's pulls) trust. Made once per folder; the key is 0600 and
    owned by the daemons' user.
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_path, cert_path, key_path = (directory / name for name in PKI_FILES)
    if all(p.exists() for p in (ca_path, cert_path, key_path)):
        return ca_path, cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfxflow local XRootD CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    directory.chmod(0o755)
    hand_over(directory, user)
    return ca_path, cert_path, key_path


@dataclass
class XRootDServer:
    """One xrootd data server exporting ``data_dir`` on ``port``.

    Parameters
    ----------
    name : str
        Short role name (``source``, ``dest``); also names the state folder.
    data_dir : Path
        Folder served as ``/`` (``oss.localroot``).
    state_dir : Path
        Folder for the config, log, pid and admin files.
    port : int
        TCP port.
    user : str or None
        Unprivileged user to drop to (``-R``), ``None`` to run as the caller.
    tpc_rate : str or None
        Bandwidth cap for the copies this server pulls (``xrdcp --xrate``, e.g. ``"50M"``);
        ``None`` for no cap. Sites use it to share a link; tests use it to slow a copy down.
    pki : (ca, cert, key) or None
        With it (see :func:`local_pki`) the server also speaks HTTPS on the same port and takes
        HTTP third-party copies (``COPY``), which finish without the xroot client's 2.5 s polls.
    """

    name: str
    data_dir: Path
    state_dir: Path
    port: int
    user: str | None = None
    tpc_rate: str | None = None
    pki: tuple[Path, Path, Path] | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. ``root://127.0.0.1:1094/``."""
        return f"root://127.0.0.1:{self.port}/"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "xrootd.log"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "xrootd.pid"

    def config_text(self) -> str:
        """The xrootd configuration: local clients only, TPC pull enabled, adler32 checksums."""
        return "\n".join(
            [
                f"xrd.port {self.port}",
                "xrd.allow host localhost",
                "all.export /",
                f"oss.localroot {self.data_dir}",
                f"all.adminpath {self.state_dir / 'admin'}",
                f"all.pidpath {self.state_dir / 'admin'}",
                "xrootd.chksum adler32",
                # The destination pulls: a TPC request spawns xrdcp in server mode on this host.
                f"ofs.tpc ttl 60 600 xfr 16 pgm {XRDCP} --server"
                + (f" --xrate {self.tpc_rate}" if self.tpc_rate else ""),
                *self.https_lines(),
                "",
            ]
        )

    def https_lines(self) -> list[str]:
        if self.pki is None:
            return []
        ca, cert, key = self.pki
        return [
            f"xrd.tls {cert} {key}",
            f"xrd.tlsca certfile {ca}",
            f"xrd.protocol XrdHttp:{self.port} libXrdHttp.so",
            "http.exthandler xrdtpc libXrdHttpTPC.so",
            "tpc.trace info",
        ]

    def start(self, timeout: float = 15.0) -> None:
        """Write the config, start the daemon in the foreground of a child process, wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "admin").mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "xrootd.cfg"
        config.write_text(self.config_text())
        hand_over(self.data_dir, self.user)
        hand_over(self.state_dir, self.user)
        command = [XROOTD, "-c", str(config), "-l", f"={self.log_path}"]
        if self.user:
            command += ["-R", self.user]
        # Own session: stopping the server also stops the xrdcp TPC helpers it spawned.
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.pid_path.write_text(str(self.process.pid))
        wait_until_listening(self.port, timeout, self.process, self.log_path)

    def stop(self) -> None:
        """Stop the daemon (and its TPC helpers) started by :meth:`start`."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # TPC helpers still in the group
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        self.pid_path.unlink(missing_ok=True)


def wait_until_listening(
    port: int, timeout: float, process: subprocess.Popen, log_path: Path
) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; raise with the log tail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    tail = log_path.read_text()[-2000:] if log_path.exists() else "(no log)"
    raise RuntimeError(f"xrootd on port {port} did not start; log tail:\n{tail}")


def stop_process_group(pid: int) -> None:
    """SIGTERM the process group led by ``pid`` (not our child); SIGKILL it if still there after 5 s."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def server_pair(base: Path, source_port: int, dest_port: int) -> tuple[XRootDServer, XRootDServer]:
    """The beamline source server and the HPC destination server under ``base``."""
    user = ensure_service_user()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the service user must be able to traverse to its folders
    source = XRootDServer("source", base / "source", base / "state" / "source", source_port, user)
    dest = XRootDServer("dest", base / "dest", base / "state" / "dest", dest_port, user)
    return source, dest


def up(base: Path, source_port: int, dest_port: int) -> None:
    """Start both servers detached from this process; they keep running until :func:`down`."""
    if shutil.which(XROOTD) is None:
        raise SystemExit("xrootd not installed: run `make sysdeps` (Debian package xrootd-server)")
    for server in server_pair(base, source_port, dest_port):
        if server.pid_path.exists():
            raise SystemExit(f"{server.name} server already running (pid file {server.pid_path})")
        server.start()
        print(f"{server.name}: {server.url} serving {server.data_dir} (log {server.log_path})")


def down(base: Path) -> None:
    """Stop the servers that :func:`up` started under ``base``."""
    for pid_file in sorted((base / "state").glob("*/xrootd.pid")):
        stop_process_group(int(pid_file.read_text()))
        pid_file.unlink()
        print(f"stopped {pid_file.parent.name} server")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m facility.xrootd", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--base", type=Path, default=Path("var/xrootd"))
    parser.add_argument("--source-port", type=int, default=1094)
    parser.add_argument("--dest-port", type=int, default=1095)
    args = parser.parse_args(argv)
    base = args.base.resolve()
    if args.action == "up":
        up(base, args.source_port, args.dest_port)
    else:
        down(base)


if __name__ == "__main__":
    main(sys.argv[1:])
