"""Tiny scenario runner shared by the Python clients of the compat suite.

A runner module registers functions with @scenario("name"). Invoked as
    run --list          prints the names of the scenarios this client can express
    run NAME [NAME...]  runs them, printing `PASS name` / `FAIL name: reason` / `SKIP name: reason`
    run                 runs all of them
The harness passes the server in COMPAT_ADDR, a name prefix for topics/znodes in
COMPAT_PREFIX, and a file for the differential transcript in COMPAT_TRANSCRIPT.
"""
import os
import sys
import time
import traceback

_SCENARIOS = {}
ADDR = os.environ.get("COMPAT_ADDR", "127.0.0.1:2181")
PREFIX = os.environ.get("COMPAT_PREFIX", "compat")
RUN_ID = os.environ.get("COMPAT_RUN_ID", "r0")
TIMEOUT = float(os.environ.get("COMPAT_TIMEOUT", "25"))
_transcript_path = os.environ.get("COMPAT_TRANSCRIPT")
_transcript = None


class Skip(Exception):
    """The client cannot express this scenario against this server."""


class Fail(Exception):
    pass


def scenario(name):
    def register(fn):
        _SCENARIOS[name] = fn
        return fn
    return register


def note(*parts):
    """One line of the differential transcript: observations that must be the same on
    Samsa and upstream once zxids, times and session ids are normalised."""
    global _transcript
    line = " ".join(str(p) for p in parts)
    print("  | " + line, flush=True)
    if _transcript_path:
        if _transcript is None:
            _transcript = open(_transcript_path, "a", encoding="utf-8")
        _transcript.write(line + "\n")
        _transcript.flush()


def check(cond, message):
    if not cond:
        raise Fail(message)


def eventually(fn, what, timeout=10.0, interval=0.1):
    """Poll fn until it returns a true value; Fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise Fail(f"{what} (waited {timeout:.0f}s, last={last!r})")


def expect_error(exc_type, fn, what):
    """fn must raise exc_type (an exception class or a tuple of them); returns the exception."""
    name = " or ".join(t.__name__ for t in exc_type) if isinstance(exc_type, tuple) else exc_type.__name__
    try:
        fn()
    except exc_type as e:
        return e
    except Exception as e:  # noqa: BLE001 - report whatever the client raised instead
        raise Fail(f"{what}: expected {name}, got {type(e).__name__}: {e}")
    raise Fail(f"{what}: expected {name}, call succeeded")


def main():
    args = sys.argv[1:]
    if args == ["--list"]:
        for name in _SCENARIOS:
            print(name)
        return 0
    names = args or list(_SCENARIOS)
    failed = 0
    for name in names:
        fn = _SCENARIOS.get(name)
        if fn is None:
            print(f"FAIL {name}: unknown scenario for this client", flush=True)
            failed += 1
            continue
        started = time.monotonic()
        try:
            fn()
            print(f"PASS {name}", flush=True)
        except Skip as e:
            print(f"SKIP {name}: {e}", flush=True)
        except Fail as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - any client error is a scenario failure
            failed += 1
            traceback.print_exc()
            print(f"FAIL {name}: {type(e).__name__}: {str(e)[:300]}", flush=True)
        finally:
            print(f"  ({time.monotonic() - started:.1f}s)", flush=True)
    return 1 if failed else 0
