"""Linux packages of the one-folder app: a .deb (dpkg-deb) and a plain tarball.

    python installer/linux/package.py deb --app dist/archivist --version 0.1.0 --arch amd64 --out dist/x.deb
    python installer/linux/package.py tarball --app dist/archivist --version 0.1.0 --arch x86_64 --out dist/x.tar.gz

The .deb installs the app under /opt/archivist, links /usr/bin/archivist to it, and adds
the desktop entry (menu category Office) and the icon in the hicolor theme. Its libc
dependency is read from the bundled binaries, so it matches the machine that built it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ICONS = HERE.parent / "icons"
sys.path.insert(0, str(HERE.parent))

import bundle  # noqa: E402

PREFIX = "/opt/archivist"
ELF_MAGIC = b"\x7fELF"


def render(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", template)
    if leftover:
        raise ValueError(f"unfilled placeholders: {leftover}")
    return template


def desktop_entry(executable: str) -> str:
    return (HERE / "archivist.desktop").read_text("utf-8").replace("@EXEC@", executable)


def elf_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as fh:
                if fh.read(4) == ELF_MAGIC:
                    found.append(path)
    return found


def required_glibc(folder: Path) -> str | None:
    """The newest GLIBC_x.y symbol version any bundled binary asks for."""
    newest: tuple[int, ...] = ()
    for path in elf_files(folder):
        for match in re.finditer(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?", path.read_bytes()):
            version = tuple(int(g) for g in match.groups() if g is not None)
            newest = max(newest, version)
    return ".".join(map(str, newest)) if newest else None


def depends(folder: Path) -> str:
    glibc = required_glibc(folder)
    deps = [f"libc6 (>= {glibc})" if glibc else "libc6"]
    names = {p.name for p in folder.rglob("*")}
    if not any(n.startswith("libstdc++.so") for n in names):
        deps.append("libstdc++6")
    if not any(n.startswith("libgcc_s.so") for n in names):
        deps.append("libgcc-s1 | libgcc1")
    deps.append("zlib1g")
    return ", ".join(deps)


def folder_kib(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        if path.is_symlink():
            total += 1
        elif path.is_file():
            total += -(-path.stat().st_size // 1024)
        elif path.is_dir():
            total += 1
    return total


def stage_deb(app: Path, root: Path, version: str, arch: str) -> Path:
    """Lay out the package's file tree under ``root``; return the DEBIAN folder."""
    opt = root / PREFIX.lstrip("/")
    shutil.copytree(app, opt, symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    os.symlink(f"{PREFIX}/{bundle.CLI_NAME}", root / "usr/bin" / bundle.CLI_NAME)
    apps = root / "usr/share/applications"
    apps.mkdir(parents=True)
    (apps / "archivist.desktop").write_text(desktop_entry(f"{PREFIX}/{bundle.CLI_NAME}"), "utf-8")
    for size, source in (("256x256", "archivist.png"), ("48x48", "archivist-48.png")):
        target = root / f"usr/share/icons/hicolor/{size}/apps"
        target.mkdir(parents=True)
        shutil.copy(ICONS / source, target / "archivist.png")
    scalable = root / "usr/share/icons/hicolor/scalable/apps"
    scalable.mkdir(parents=True)
    shutil.copy(ICONS / "archivist.svg", scalable / "archivist.svg")
    docs = root / "usr/share/doc/archivist"
    docs.mkdir(parents=True)
    (docs / "copyright").write_text(
        "Archivist is licensed under the Apache License 2.0 (/usr/share/common-licenses/Apache-2.0).\n"
        "The bundled SmolLM2-135M-Instruct and all-MiniLM-L6-v2 weights are Apache-2.0;\n"
        "the third-party libraries keep their own licences, shipped beside them in /opt/archivist.\n",
        "utf-8",
    )
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            executable = path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
    debian = root / "DEBIAN"
    debian.mkdir()
    control = render(
        (HERE / "control.in").read_text("utf-8"),
        VERSION=version,
        ARCH=arch,
        INSTALLED_SIZE=str(folder_kib(root) - 1),
        DEPENDS=depends(opt),
        HOMEPAGE=bundle.HOMEPAGE,
    )
    (debian / "control").write_text(control, "utf-8")
    sums = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and debian not in path.parents:
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            sums.append(f"{digest}  {path.relative_to(root).as_posix()}\n")
    (debian / "md5sums").write_text("".join(sums), "utf-8")
    for path in debian.iterdir():
        path.chmod(0o644)
    return debian


def build_deb(app: Path, out: Path, version: str, arch: str, compression: str = "xz") -> Path:
    """``compression``: xz (smallest download, readable by every dpkg) or zstd (several
    times faster to build, ~25% bigger; dpkg 1.21.18+, i.e. Debian 12 / Ubuntu 22.04)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="archivist-deb-", dir=out.parent) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        stage_deb(app, root, version, arch)
        partial = out.with_name(out.name + ".partial")
        subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(partial)], check=True)
        os.replace(partial, out)
    return out


def build_tarball(app: Path, out: Path, version: str, arch: str) -> Path:
    top = f"archivist-{version}-linux-{arch}"

    def tidy(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(app, arcname=top, filter=tidy)
        extras = {
            "install-desktop-entry.sh": HERE / "install-desktop-entry.sh",
            "share/archivist.desktop.in": HERE / "archivist.desktop",
            "share/archivist.png": ICONS / "archivist.png",
            "share/archivist.svg": ICONS / "archivist.svg",
        }
        for name, source in extras.items():
            tar.add(source, arcname=f"{top}/{name}", filter=tidy)
    os.replace(partial, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["deb", "tarball"])
    parser.add_argument("--app", type=Path, required=True, help="the one-folder app (dist/archivist)")
    parser.add_argument("--version", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compression", choices=["xz", "zstd"], default="xz", help="of the .deb")
    args = parser.parse_args(argv)
    if not (args.app / bundle.CLI_NAME).is_file():
        parser.error(f"{args.app} has no {bundle.CLI_NAME} executable: run installer/build.py first")
    if args.kind == "deb":
        print(build_deb(args.app, args.out, args.version, args.arch, args.compression))
    else:
        print(build_tarball(args.app, args.out, args.version, args.arch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
