#!/usr/bin/env python3
"""Include direction of the tree (run by ./dev test and CI). Usage: check-includes.py [ROOT]

Rules:
  - pkg/core includes only the standard library and itself: it stays pure, free of I/O;
  - rooms below others never include them (kube and net nothing of exchange, ...);
  - no include cycle between the rooms of pkg/ (a room is a folder under pkg/);
  - the Kubernetes API test server (tests/kube, but for dump_desired.cpp, a
    controller tool kept beside it) includes nothing of pkg/: a stand-in for the
    real API server that shared the client's code would share its mistakes.
Prints every violation with file:line and exits 1 when there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent).resolve()
PKG = ROOT / "pkg"
KUBE_TEST_SERVER = ROOT / "tests" / "kube"
KUBE_TEST_SERVER_EXEMPT = {"dump_desired.cpp"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# room -> rooms it must never include (besides the cycle rule)
FORBIDDEN = {
    "core": None,  # None: nothing but the standard library and core itself
    "net": {"exchange", "kube", "store", "controller", "app"},
    "kube": {"exchange", "store", "app"},
    "store": {"exchange", "kube", "controller", "app"},
    "exchange": {"store", "kube", "controller", "app"},
    "runtime": {"store", "exchange", "kube", "controller", "app"},
    "controller": {"store", "app"},
}


def rooms():
    return sorted(p.name for p in PKG.iterdir() if p.is_dir())


def sources(room):
    return sorted(p for p in (PKG / room).rglob("*") if p.suffix in (".h", ".cpp", ".hpp"))


def main():
    names = set(rooms())
    errors = []
    graph = {room: {} for room in names}  # room -> {included room: first file:line}
    for room in sorted(names):
        for path in sources(room):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                bracket, target = m.groups()
                where = f"{path.relative_to(ROOT)}:{number}"
                head = target.split("/", 1)[0]
                quoted_room = head if bracket == '"' and "/" in target and head in names else None
                if room == "core":
                    standard = bracket == "<" and "/" not in target and "." not in target
                    if not (standard or quoted_room == "core"):
                        errors.append(f"{where}: pkg/core includes only the standard library, not {target}")
                    continue
                if quoted_room is None or quoted_room == room:
                    continue
                if quoted_room in (FORBIDDEN.get(room) or set()):
                    errors.append(f"{where}: pkg/{room} must not include pkg/{quoted_room} ({target})")
                graph[room].setdefault(quoted_room, where)
    if KUBE_TEST_SERVER.is_dir():
        for path in sorted(KUBE_TEST_SERVER.glob("*")):
            if path.suffix not in (".h", ".cpp") or path.name in KUBE_TEST_SERVER_EXEMPT:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                m = INCLUDE.match(line)
                if m and m.group(1) == '"' and m.group(2).split("/", 1)[0] in names and "/" in m.group(2):
                    errors.append(f"{path.relative_to(ROOT)}:{number}: the Kubernetes API test server "
                                  f"includes nothing of pkg/, not {m.group(2)}")
    # Cycles between rooms: depth-first search, each cycle reported once with the includes that close it.
    state, stack, seen_cycles = {}, [], set()

    def visit(room):
        state[room] = "open"
        stack.append(room)
        for other in sorted(graph[room]):
            if state.get(other) == "open":
                cycle = stack[stack.index(other):] + [other]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    links = ", ".join(f"{a}->{b} at {graph[a][b]}" for a, b in zip(cycle, cycle[1:]))
                    errors.append("include cycle " + " -> ".join(cycle) + f" ({links})")
            elif other not in state:
                visit(other)
        stack.pop()
        state[room] = "done"

    for room in sorted(names):
        if room not in state:
            visit(room)
    for error in errors:
        print(error)
    if errors:
        print(f"{len(errors)} include rule(s) broken", file=sys.stderr)
        return 1
    edges = sum(len(v) for v in graph.values())
    print(f"includes: {len(names)} rooms, {edges} room-to-room edges, pkg/core standard library only, no cycles, the API test server free of pkg/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
