#!/usr/bin/python3
"""A linearizability checker for one read/write/compare-and-set register (issue #17 fault tests).

The register is a znode. Its state is (value, version): ZooKeeper's setData without a version is a
write (value := v, version += 1); setData with an expected version is a CAS that succeeds only when
the znode's version equals it (BadVersion otherwise, a definite failure); a read returns
(value, version). Reads in the fault test are sync() followed by getData on the same session, so
they are ordered after every write the leader committed before the sync (ZooKeeper's way to get a
recent read; a plain read on a follower may be stale and is only sequentially consistent).

The search is Wing & Gong's, with Lowe's memoisation (WGL): the history becomes a list of call and
return events in time order; the search repeatedly picks a call that comes before the first pending
return, applies it to the model if it is legal there and the (linearized set, state) pair has not
been seen, removes its events and starts again from the head; when it meets a return event whose
call was not linearized it backtracks. An operation whose outcome is unknown (timeout, connection
loss) has no return event: it may take effect at any point after its call, or never.

    from linearizability import Op, check
    ok, info = check(ops, initial=(b"init", 0))
"""
from dataclasses import dataclass, field
from typing import Any, Optional

INF = float("inf")


@dataclass
class Op:
    proc: int
    kind: str            # "read", "write" or "cas"
    inv: float           # invocation time (monotonic seconds)
    resp: float          # completion time, INF when the outcome is unknown
    value: Any = None    # read: the (value, version) seen; write/cas: the new value
    expected: Optional[int] = None   # cas: the expected version
    ok: Optional[bool] = None        # cas: True applied, False BadVersion, None unknown
    id: int = field(default=-1)


def step(state, op):
    """Returns the state after op, or None when op cannot take effect in state with its result."""
    value, version = state
    if op.kind == "read":
        return state if tuple(op.value) == state else None
    if op.kind == "write":
        return (op.value, version + 1)
    if op.kind == "cas":
        if op.ok is False:  # a BadVersion answer: legal only where the version differs
            return state if version != op.expected else None
        # applied (or unknown and taken to have been applied)
        return (op.value, version + 1) if version == op.expected else None
    raise ValueError(op.kind)


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op, self.is_call, self.match, self.prev, self.next = op, is_call, None, None, None


def check(ops, initial, max_steps=3_000_000):
    """Returns (True, info) when some linearization of ops exists, (False, info) when none does,
    (None, info) when max_steps search steps did not decide. info is a short description."""
    ops = list(ops)
    for i, o in enumerate(ops):
        o.id = i
    events = []
    for o in ops:
        c = _Node(o, True)
        events.append((o.inv, 0, c))
        if o.resp != INF:
            r = _Node(o, False)
            c.match = r
            # a return at the same instant as a call orders after it (the two overlap)
            events.append((o.resp, 1, r))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Node(None, False)
    prev = head
    for _, _, n in events:
        prev.next, n.prev = n, prev
        prev = n
    returns_left = sum(1 for o in ops if o.resp != INF)

    def lift(c):
        c.prev.next = c.next
        if c.next: c.next.prev = c.prev
        r = c.match
        if r is not None:
            r.prev.next = r.next
            if r.next: r.next.prev = r.prev

    def unlift(c):
        r = c.match
        if r is not None:
            r.prev.next = r
            if r.next: r.next.prev = r
        c.prev.next = c
        if c.next: c.next.prev = c

    state, linearized = tuple(initial), 0
    cache = set()
    stack = []
    steps = 0
    blocker = None  # the completed op that stopped the deepest partial linearization

    def candidates():
        # the calls before the first return event; ops with a known outcome are tried first and
        # unknown-outcome ones last (most never took effect: trying them early only widens the
        # search; the order changes nothing about which histories pass)
        cs, e = [], head.next
        while e is not None and e.is_call:
            cs.append(e)
            e = e.next
        cs.sort(key=lambda c: c.match is None)
        return cs, e

    if returns_left == 0:
        return True, f"linearizable ({len(ops)} ops, nothing completed)"
    cands, first_ret = candidates()
    i = 0
    while True:
        steps += 1
        if steps > max_steps:
            return None, f"undecided after {max_steps} steps ({len(ops)} ops)"
        chosen = None
        while i < len(cands):
            c = cands[i]
            i += 1
            ns = step(state, c.op)
            if ns is None:
                continue
            lin = linearized | (1 << c.op.id)
            if (lin, ns) in cache:
                continue
            cache.add((lin, ns))
            chosen = (c, ns, lin)
            break
        if chosen is not None:
            c, ns, lin = chosen
            stack.append((cands, i, c, state))
            state, linearized = ns, lin
            lift(c)
            if c.match is not None:
                returns_left -= 1
                if returns_left == 0:
                    return True, f"linearizable ({len(ops)} ops, {steps} steps)"
            cands, first_ret = candidates()
            i = 0
            continue
        # nothing fits before the first pending return: undo the last choice
        if first_ret is not None and (blocker is None or len(stack) >= blocker[0]):
            blocker = (len(stack), first_ret.op, state)
        if not stack:
            return False, _explain(blocker)
        cands, i, c, state = stack.pop()
        linearized &= ~(1 << c.op.id)
        if c.match is not None:
            returns_left += 1
        unlift(c)
        first_ret = None
        e = c.next
        while e is not None and e.is_call:
            e = e.next
        first_ret = e


def _explain(blocker):
    if blocker is None:
        return "no linearization"
    depth, op, state = blocker
    return f"no linearization: after {depth} ops (register then {state!r}) op {op.id} (client {op.proc} {op.kind} " \
           f"{op.value!r} exp={op.expected} ok={op.ok}, {op.inv:.3f}..{op.resp:.3f}) cannot be placed"


def _self_test():
    W = lambda p, a, b, v: Op(p, "write", a, b, v)
    R = lambda p, a, b, v, ver: Op(p, "read", a, b, (v, ver))
    C = lambda p, a, b, exp, v, ok: Op(p, "cas", a, b, v, expected=exp, ok=ok)
    init = ("0", 0)
    cases = [
        ("sequential", [W(1, 0, 1, "a"), R(2, 2, 3, "a", 1)], True),
        ("stale read after write completed", [W(1, 0, 1, "a"), R(2, 2, 3, "0", 0)], False),
        ("concurrent read sees either", [W(1, 0, 3, "a"), R(2, 1, 2, "0", 0), R(3, 1, 2, "a", 1)], True),
        ("reads disagree on order", [W(1, 0, 10, "a"), R(2, 1, 2, "a", 1), R(3, 3, 4, "0", 0)], False),
        ("unknown write may apply later", [Op(1, "write", 0, INF, "a"), R(2, 5, 6, "0", 0), R(2, 7, 8, "a", 1)], True),
        ("unknown write may never apply", [Op(1, "write", 0, INF, "a"), R(2, 5, 6, "0", 0)], True),
        ("value from nowhere", [R(2, 5, 6, "b", 1)], False),
        ("cas ok", [C(1, 0, 1, 0, "x", True), R(2, 2, 3, "x", 1)], True),
        ("cas badversion legal", [W(1, 0, 1, "a"), C(2, 2, 3, 0, "x", False)], True),
        ("cas badversion illegal", [C(2, 2, 3, 0, "x", False), R(1, 4, 5, "0", 0)], False),
        ("two cas on one version both applied", [C(1, 0, 2, 0, "x", True), C(2, 0, 2, 0, "y", True)], False),
        ("lost acked write", [W(1, 0, 1, "a"), W(2, 2, 3, "b"), R(3, 4, 5, "a", 1)], False),
    ]
    bad = 0
    for name, ops, want in cases:
        got, info = check(ops, init)
        mark = "ok " if got == want else "BAD"
        bad += got != want
        print(f"{mark} {name}: {got} ({info})")
    return bad


if __name__ == "__main__":
    import sys
    sys.exit(1 if _self_test() else 0)
