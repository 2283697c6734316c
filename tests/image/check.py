#!/usr/bin/env python3
"""Checks the Dockerfile's package lists against a real build tree, in seconds.

  tests/image/check.py --dockerfile Dockerfile --build-dir build [--base tests/image/bookworm-slim-packages.txt]

(a) runtime stage: every shared library that the shipped binaries (the
    executables defined under cmd/, which is what the image's build stage
    leaves in build/bin) load, per `ldd`, mapped to its Debian package with
    `dpkg -S`, is installed in the runtime stage: named there, pulled in by a
    named package's Depends/Pre-Depends, or in the base image's package set.
(b) build stage: every Debian package that the build of those binaries uses
    is installed in the build stage the same way. "Uses" is read off the build
    tree, not off a hand-written list: the CMake package configs and
    pkg-config files that find_package/pkg_check_modules resolved
    (CMakeCache.txt: *_DIR, <prefix>_MODULE_NAME), the libraries the
    binaries' link lines name (link.txt), and every header the compiler read
    for their objects (the .o.d depfiles under cmd/ and pkg/; tests/, bench/
    and fuzz/ are not in the image).

Dependencies are followed in this machine's dpkg database (the build machine
has every -dev package and their runtime libraries installed), taking the
first installed alternative of "a | b", as apt would on a clean base.
Exit 0 when both hold; 1 with every missing package and the evidence for it.
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

SANITIZER_RUNTIMES = {"libasan8", "libubsan1", "liblsan0", "libtsan2"}


def dockerfile_stages(path):
    """[(name, base, [apt packages])] for each FROM, in order."""
    text = open(path).read()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    # ARGs declared before the first FROM, with their defaults, for the FROM lines.
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text.split("\nFROM", 1)[0], re.M))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            stages.append({"name": name, "base": base, "packages": []})
        elif word == "RUN" and stages:
            for command in re.split(r"&&|\|\||(?<!\\);", rest):
                try:
                    tokens = shlex.split(command)
                except ValueError:
                    tokens = command.split()
                for i in range(len(tokens) - 1):
                    if tokens[i] in ("apt-get", "apt") and tokens[i + 1] == "install":
                        stages[-1]["packages"] += [t.split("=")[0] for t in tokens[i + 2:] if not t.startswith("-")]
    return stages


def read_dpkg_status():
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Depends}\t${Pre-Depends}\t${Provides}\n"],
        check=True, capture_output=True, text=True).stdout
    installed, provides = {}, {}
    for line in out.splitlines():
        name, status, depends, predepends, prov = (line.split("\t") + [""] * 5)[:5]
        if not status.startswith("ii"):
            continue
        installed[name] = [d for d in (depends, predepends) if d]
        for p in prov.split(","):
            p = p.strip().split(" ")[0]
            if p:
                provides.setdefault(p, []).append(name)
    return installed, provides


def closure(roots, installed, provides, unknown):
    """Every installed package that `roots` pull in through Depends/Pre-Depends."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in installed:
            if name in provides:
                todo += provides[name]
            elif name in roots:
                unknown.add(name)
            continue
        for field in installed[name]:
            for group in field.split(","):
                choices = [a.strip().split(" ")[0].split(":")[0] for a in group.split("|") if a.strip()]
                chosen = next((c for c in choices if c in installed or c in provides), None)
                if chosen:
                    todo.append(chosen)
    return seen


def owners(paths):
    """{path: package} through `dpkg -S`, trying the merged-/usr spellings of each path."""
    result = {}
    candidates = {}
    for p in paths:
        forms = {p, os.path.realpath(p)}
        for f in list(forms):
            if f.startswith("/usr/lib/") or f.startswith("/usr/bin/") or f.startswith("/usr/sbin/"):
                forms.add(f[4:])
            elif f.startswith("/lib/") or f.startswith("/lib64/") or f.startswith("/bin/") or f.startswith("/sbin/"):
                forms.add("/usr" + f)
        candidates[p] = forms
    every = sorted({f for forms in candidates.values() for f in forms})
    found = {}
    for i in range(0, len(every), 500):
        # dpkg -S exits 1 when some path is not found; the found ones are still printed.
        out = subprocess.run(["dpkg", "-S"] + every[i:i + 500], capture_output=True, text=True).stdout
        for line in out.splitlines():
            pkgs, _, path = line.partition(": ")
            if path in every:
                found[path] = sorted({x.strip().split(":")[0] for x in pkgs.split(",")})
    for p, forms in candidates.items():
        for f in sorted(forms):
            if f in found:
                result[p] = found[f][0] if len(found[f]) == 1 else ",".join(found[f])
                break
    return result


def shipped_targets(build):
    return sorted(os.path.basename(d)[:-4] for d in glob.glob(os.path.join(build, "cmd", "CMakeFiles", "*.dir")))


def cache_entries(build):
    entries = {}
    for line in open(os.path.join(build, "CMakeCache.txt")):
        m = re.match(r"^([^#/][^:=]*):([A-Z]+)=(.*)$", line.rstrip("\n"))
        if m:
            entries[m.group(1)] = m.group(3)
    return entries


def build_evidence(build, targets):
    """{file on this machine: why the build needs it} for the shipped binaries."""
    evidence = {}
    cache = cache_entries(build)
    # Test- and benchmark-only packages: the image configures with BACKSTOP_TESTS/BENCH=OFF.
    test_only = {"GTest", "benchmark"}
    for key, value in cache.items():
        # find_package's <Name>_DIR: the directory of the package's CMake config file.
        if key.endswith("_DIR") and value.startswith("/usr/") and os.path.isdir(value) and key[:-4] not in test_only:
            configs = glob.glob(os.path.join(value, "*Config.cmake")) + glob.glob(os.path.join(value, "*-config.cmake"))
            for c in sorted(configs)[:1]:
                evidence.setdefault(c, f"find_package({key[:-4]}) -> {value}")
        if key.endswith("_MODULE_NAME") and value:
            pc = subprocess.run(["pkg-config", "--path", value], capture_output=True, text=True).stdout.strip()
            if pc:
                evidence.setdefault(os.path.realpath(pc), f"pkg_check_modules({key[:-12]} {value})")
            else:
                evidence.setdefault(f"pkg-config:{value}", f"pkg_check_modules({key[:-12]} {value}): pkg-config does not find it")
        if key.startswith("OPENSSL_") and key.endswith("_LIBRARY") and value.startswith("/"):
            evidence.setdefault(value, f"find_package(OpenSSL) {key}")
    for target in targets:
        link = os.path.join(build, "cmd", "CMakeFiles", f"{target}.dir", "link.txt")
        if os.path.exists(link):
            for token in shlex.split(open(link).read()):
                if token.startswith("/usr/") and re.search(r"\.(so|a)(\.|$)", token):
                    evidence.setdefault(token, f"{target}'s link line")
    depfiles = []
    for sub in ("cmd", "pkg"):
        depfiles += glob.glob(os.path.join(build, sub, "**", "*.o.d"), recursive=True)
    if not depfiles:
        evidence["depfiles"] = "no .o.d depfiles under cmd/ and pkg/: build the tree first"
    for d in depfiles:
        for token in open(d).read().replace("\\\n", " ").split():
            if token.startswith("/usr/") and not token.endswith(":"):
                evidence.setdefault(os.path.normpath(token), f"included by {os.path.relpath(d, build)}")
    return evidence


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--base", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "bookworm-slim-packages.txt"))
    args = ap.parse_args()

    stages = dockerfile_stages(args.dockerfile)
    build_stage = next((s for s in stages if s["name"] == "build"), None)
    runtime_stage = stages[-1] if stages else None
    if not build_stage or runtime_stage is build_stage:
        print(f"{args.dockerfile}: expected a stage 'AS build' and a runtime stage after it", file=sys.stderr)
        return 1
    base = {l.strip() for l in open(args.base) if l.strip() and not l.startswith("#")}
    installed, provides = read_dpkg_status()
    failures = 0
    unknown = set()

    def stage_set(stage):
        return closure(set(stage["packages"]) | base, installed, provides, unknown)

    # (a) runtime libraries
    targets = shipped_targets(args.build_dir)
    binaries = [os.path.join(args.build_dir, "bin", t) for t in targets]
    missing_bins = [b for b in binaries if not os.path.exists(b)]
    if not targets or missing_bins:
        print(f"shipped binaries not built: {missing_bins or 'no targets under cmd/'}", file=sys.stderr)
        return 1
    libs = {}
    for b in binaries:
        out = subprocess.run(["ldd", b], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            line = line.strip()
            if "not found" in line:
                print(f"FAIL {os.path.basename(b)}: {line}")
                failures += 1
                continue
            m = re.match(r"^(\S+) => (/\S+)", line) or re.match(r"^(/\S+) \(", line)
            if m:
                libs.setdefault(m.group(m.lastindex), set()).add(os.path.basename(b))
    lib_pkgs = owners(libs)
    runtime = stage_set(runtime_stage)
    print(f"runtime stage ({runtime_stage['base']}): {len(runtime_stage['packages'])} packages named, "
          f"{len(runtime)} with their dependencies and the base set")
    for lib in sorted(libs):
        pkg = lib_pkgs.get(lib)
        users = ", ".join(sorted(libs[lib]))
        if pkg is None:
            print(f"FAIL {lib} (linked by {users}) belongs to no Debian package")
            failures += 1
        elif pkg in SANITIZER_RUNTIMES:
            print(f"FAIL {lib} ({pkg}): a sanitizer runtime; check a normal (not ASan) build tree")
            failures += 1
        elif not any(p in runtime for p in pkg.split(",")):
            print(f"FAIL runtime stage lacks {pkg}: {lib} is linked by {users}")
            failures += 1
        else:
            print(f"  ok {pkg:28} {lib}")

    # (b) build packages
    evidence = build_evidence(args.build_dir, targets)
    build_pkgs = owners([f for f in evidence if f.startswith("/")])
    buildset = stage_set(build_stage)
    print(f"build stage ({build_stage['base']}): {len(build_stage['packages'])} packages named, "
          f"{len(buildset)} with their dependencies and the base set; {len(evidence)} files the build uses")
    by_pkg = {}
    for f, why in sorted(evidence.items()):
        pkg = build_pkgs.get(f)
        if pkg is None:
            if f.startswith("/usr/include/") or f.startswith("/usr/lib/"):
                # Files that no package owns (generated, or installed by hand) are a build machine problem.
                print(f"FAIL {f} ({why}) belongs to no Debian package")
                failures += 1
            elif not f.startswith("/"):
                print(f"FAIL {why}")
                failures += 1
            continue
        by_pkg.setdefault(pkg, []).append((f, why))
    for pkg, files in sorted(by_pkg.items()):
        if any(p in buildset for p in pkg.split(",")):
            print(f"  ok {pkg:28} ({len(files)} files, e.g. {files[0][0]})")
        else:
            print(f"FAIL build stage lacks {pkg}:")
            for f, why in files[:5]:
                print(f"       {f}: {why}")
            if len(files) > 5:
                print(f"       ... and {len(files) - 5} more files")
            failures += 1
    if unknown:
        # Named in the Dockerfile but not installed here: their own dependencies were not followed.
        print(f"note: not installed on this machine, dependencies not followed: {' '.join(sorted(unknown))}")
    print("FAILED" if failures else "passed", f"({failures} problems)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
