"""What the ensemble scripts (mixed_ensemble.py, matrix.py, fault_test.py, rolling_migration.py)
share: free loopback ports, polling, and the four-letter words that tell a member's quorum role."""
import shutil
import socket
import time


def free_ports(n):
    """n distinct free loopback ports (all bound at once, then released)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def four(port, word, timeout=2.0):
    """The answer to a four-letter word, or "" when the member does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out += b
            return out.decode(errors="replace")
    except OSError:
        return ""


def mode(port):
    """srvr's `Mode:` (leader, follower, observer, standalone), or None."""
    for line in four(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line[5:].strip()
    return None


def wait_until(cond, timeout, step=0.05, ignore_errors=False):
    """Polls cond() every step seconds until it is true (True) or timeout seconds pass (False).
    With ignore_errors an exception from cond() counts as "not yet" (a member still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except Exception:
            if not ignore_errors:
                raise
        time.sleep(step)
    return False


def finish(errs, rc, root, keep=False):
    """Prints the request error count and ends a perf script's run: its exit code (1 when any
    request failed), its directory removed unless kept or the run failed (then its logs stay)."""
    print(f"\nrequest errors: {errs}")
    if errs:
        rc = 1
    if keep or rc:
        print(f"logs in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return rc
