"""Checks on a workbook package before anything reads it, and safe writing of outputs.

Both readers (the recalc engine's :mod:`npl_xl.recalc.xlsx` and the file book's
:mod:`npl_xl.workbook.graft`) open a package through :func:`open_package`, which refuses,
with one line naming the part and the problem (a :class:`~npl_xl.errors.WorkbookError`,
exit status 2 on the command line):

- what is not a regular file (a folder, a FIFO, a device), what is not a zip package (an
  old .xls or a password-protected workbook, which Excel stores as an OLE compound file);
- two entries with the same name (OPC part names compare case-insensitively), and entry
  names that would land outside the folder a careless unzip expands them into (``../``,
  absolute paths, drive letters, backslashes);
- encrypted entries and compression methods other than stored and deflate (what Excel
  writes);
- a zip bomb: an entry whose uncompressed size is over :attr:`Limits.max_part_bytes`, a
  package over :attr:`Limits.max_total_bytes`, or an entry over 16 MiB inflating more than
  :attr:`Limits.max_ratio` times (``--max-part-mb`` and ``--max-ratio`` raise them). The
  declared sizes are binding: :mod:`zipfile` never inflates an entry past its declared size
  and checks the CRC at the end;
- any XML part with a document type declaration (``<!DOCTYPE``): OOXML has none, and a DTD
  is how entity expansion ("billion laughs") and external entities get in. Only the prolog
  is read (the declaration must come before the root element).

:func:`parse_xml` parses a part with lxml's default safety limits (no huge-tree mode, no
DTD, no network) and turns a parse error into a message naming the part; :func:`check_sheet_names`
refuses a workbook with no sheets or with two sheets whose names differ only in case, as
Excel does. :func:`write_atomically` writes an output through a temporary file in the target
folder, renamed into place, with the mode the user's umask gives a new file, and removes the
stale temporary files a killed run of npl-xl left (only its own: ``.NAME.npl-xl-PID-*.tmp``
whose process is gone).
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lxml import etree

from npl_xl.errors import WorkbookError

__all__ = ["Limits", "DEFAULT_LIMITS", "open_package", "check_entries", "parse_xml",
           "check_sheet_names", "check_regular_file", "write_atomically",
           "remove_stale_temporaries", "same_file", "add_limit_arguments", "limits_from_args",
           "MAX_FORMULA_CHARS", "ZIP_ERRORS"]

MIB = 1 << 20
#: Excel's limit on the length of a formula's text (Excel specifications and limits).
MAX_FORMULA_CHARS = 8192
_RATIO_FLOOR = 16 * MIB  # parts smaller than this are never refused for their ratio
_ZIP_MAGIC = b"PK\x03\x04"
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: What reading a damaged zip entry can raise (a bad CRC, a broken deflate stream, a
#: truncated file): caught wherever an entry is read and turned into one line naming it.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
              NotImplementedError, RuntimeError)
_SAFE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


@dataclass(frozen=True)
class Limits:
    """Limits on what a package may make npl-xl hold in memory.

    Attributes
    ----------
    max_part_bytes : int
        Uncompressed size of one zip entry, bytes (default 1 GiB: a 1,048,575-row loan tape
        with 17 columns is about 0.6 GiB of sheet XML).
    max_total_bytes : int
        Uncompressed size of all entries together, bytes (default twice the part limit).
    max_ratio : float
        Uncompressed / compressed size of an entry over 16 MiB (default 200; sheet XML
        deflates about 10 to 30 times, deflate's own ceiling is about 1,032).
    max_cells : int
        Cells in the used range (rows x columns, from the cells that exist) of a sheet the
        recalc engine holds as a grid (default 50,000,000: 8 bytes each).
    """

    max_part_bytes: int = 1024 * MIB
    max_total_bytes: int = 2048 * MIB
    max_ratio: float = 200.0
    max_cells: int = 50_000_000


DEFAULT_LIMITS = Limits()


def add_limit_arguments(parser) -> None:
    """The command-line options that raise :class:`Limits` (recalc and run)."""
    parser.add_argument("--max-part-mb", type=float, default=None, metavar="MB",
                        help="largest uncompressed zip entry to read, MB (default "
                             f"{DEFAULT_LIMITS.max_part_bytes // MIB}; the package may hold "
                             "twice this in all)")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="largest compression ratio of an entry over 16 MB (default "
                             f"{DEFAULT_LIMITS.max_ratio:g})")


def limits_from_args(args) -> Limits:
    from npl_xl.errors import InputTypeError

    part_mb = getattr(args, "max_part_mb", None)
    ratio = getattr(args, "max_ratio", None)
    limits = DEFAULT_LIMITS
    if part_mb is not None:
        if not part_mb > 0:
            raise InputTypeError(f"must be a number of MB > 0, got {part_mb:g}",
                                 argument="--max-part-mb")
        part = int(part_mb * MIB)
        limits = Limits(part, max(2 * part, limits.max_total_bytes), limits.max_ratio,
                        limits.max_cells)
    if ratio is not None:
        if not ratio >= 1:
            raise InputTypeError(f"must be a number >= 1, got {ratio:g}", argument="--max-ratio")
        limits = Limits(limits.max_part_bytes, limits.max_total_bytes, ratio, limits.max_cells)
    return limits


def check_regular_file(path: Path) -> os.stat_result:
    """The file's status; a WorkbookError for a missing file, a folder, a FIFO or device
    (opening a FIFO would block)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise WorkbookError(f"no such file: {path}") from None
    except OSError as exc:
        raise WorkbookError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(status.st_mode):
        raise WorkbookError(f"{path} is a folder, not a workbook file")
    if not stat.S_ISREG(status.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(status.st_mode) else "not a regular file"
        raise WorkbookError(f"{path} is {kind}, not a workbook file")
    return status


def _unsafe_name(name: str) -> str | None:
    """Why an entry name is unsafe to copy into an output package, or None."""
    if not name:
        return "an empty name"
    if "\x00" in name:
        return "a NUL character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if any(segment == ".." for segment in name.split("/")):
        return "'..' (it would land outside the folder)"
    return None


def check_entries(path, infos: list[zipfile.ZipInfo], limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse duplicate or unsafe entry names, encryption, unknown compression, zip bombs."""
    seen: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        why = _unsafe_name(name)
        if why:
            raise WorkbookError(f"{path}: zip entry {name!r} has {why}; refusing the package")
        key = name.lower()
        if key in seen:
            also = "" if seen[key] == name else f" (and {seen[key]!r}: part names ignore case)"
            raise WorkbookError(f"{path}: zip entry {name!r} appears twice{also}; a package "
                                "holds each part once (Excel refuses such a file)")
        seen[key] = name
        if info.flag_bits & 0x1:
            raise WorkbookError(f"{path}: part {name} is encrypted; remove the password "
                                "(File > Info > Protect Workbook) and save again")
        if info.compress_type not in _SAFE_METHODS:
            raise WorkbookError(f"{path}: part {name} uses zip compression method "
                                f"{info.compress_type}; npl-xl reads stored and deflate "
                                "entries only (as Excel writes them)")
        size = info.file_size
        if size > limits.max_part_bytes:
            raise WorkbookError(
                f"{path}: part {name} unzips to {size / MIB:,.0f} MB, over the limit of "
                f"{limits.max_part_bytes / MIB:,.0f} MB (--max-part-mb raises it)")
        if size > _RATIO_FLOOR and size > limits.max_ratio * max(info.compress_size, 1):
            ratio = size / max(info.compress_size, 1)
            raise WorkbookError(
                f"{path}: part {name} inflates {ratio:,.0f} times ({info.compress_size:,} to "
                f"{size:,} bytes), over the limit of {limits.max_ratio:g} (a zip bomb? "
                "--max-ratio raises it)")
        total += size
        if total > limits.max_total_bytes:
            raise WorkbookError(
                f"{path}: the package unzips to more than {limits.max_total_bytes / MIB:,.0f} MB "
                "(--max-part-mb raises the limit: twice its value in all)")


_PROLOG_CHUNK = 64 * 1024


def _check_prolog(path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse a DOCTYPE in the XML prolog of one part (reads only up to the root element)."""
    with archive.open(info) as stream:
        head = stream.read(4)
        if not head:
            return
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
            encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
                else ("utf-16-le" if head[1:2] == b"\x00" else "utf-16-be")
        elif head.lstrip()[:1] == b"<" or head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        else:
            return  # not XML (an image, vbaProject.bin)
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        buffer = decoder.decode(head)

        def more() -> bool:
            nonlocal buffer
            chunk = stream.read(_PROLOG_CHUNK)
            buffer += decoder.decode(chunk, final=not chunk)
            return bool(chunk)

        while True:
            buffer = buffer.lstrip("\ufeff \t\r\n")
            while len(buffer) < 9 and more():
                buffer = buffer.lstrip("\ufeff \t\r\n")
            if buffer.startswith("<?"):
                closing = "?>"
            elif buffer.startswith("<!--"):
                closing = "-->"
            elif buffer.startswith("<!"):
                raise WorkbookError(f"{path}: part {info.filename} declares a document type "
                                    "(<!DOCTYPE ...>); OOXML parts have none, and a DTD can "
                                    "define entities: refusing the package")
            else:
                return  # the root element (or not XML after all): the prolog is over
            end = buffer.find(closing)
            while end < 0:
                if not more():
                    return  # an unterminated prolog: the parser will say so
                end = buffer.find(closing)
            buffer = buffer[end + len(closing):]


def open_package(path, limits: Limits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """Open ``path`` as a checked zip package (see the module docstring for the checks).

    Raises
    ------
    WorkbookError
        One line naming the file, the part and the problem.
    """
    path = Path(path)
    check_regular_file(path)
    with open(path, "rb") as handle:
        magic = handle.read(8)
    if magic == _CFB_MAGIC:
        raise WorkbookError(f"{path} is an OLE compound file: an old .xls workbook or a "
                            "password-protected one; save it as .xlsx without a password")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        hint = " (.xls/.xlsb binary workbooks are not supported: save as .xlsx)" \
            if path.suffix.lower() in (".xls", ".xlsb") else ""
        raise WorkbookError(f"{path} is not an .xlsx/.xlsm workbook{hint}: {exc}") from None
    try:
        check_package(path, archive, limits)
    except BaseException:
        archive.close()
        raise
    return archive


def check_package(path, archive: zipfile.ZipFile, limits: Limits = DEFAULT_LIMITS) -> None:
    """The entry checks and the DOCTYPE check of every XML part of an open archive."""
    infos = archive.infolist()
    check_entries(path, infos, limits)
    for info in infos:
        if info.is_dir():
            continue
        try:
            _check_prolog(path, archive, info)
        except WorkbookError:
            raise
        except ZIP_ERRORS as exc:
            raise WorkbookError(f"{path}: part {info.filename} cannot be unzipped: {exc}") \
                from None


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)


def xml_parser() -> etree.XMLParser:
    """lxml's parser with its default limits (depth 256, text nodes 10 MB), no DTD, no network."""
    return _PARSER


def parse_xml(path, part: str, data: bytes) -> etree._Element:
    """Parse one part; a WorkbookError naming the part when it is not well-formed, has a
    DTD, or goes past the parser's limits (attributes, text or nesting)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise WorkbookError(f"{path}: part {part} is not readable XML: {_short(exc)}") from None
    except ValueError as exc:  # e.g. an encoding declaration lxml cannot use
        raise WorkbookError(f"{path}: part {part} is not readable XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise WorkbookError(f"{path}: part {part} declares a document type (<!DOCTYPE ...>); "
                            "refusing the package")
    return root


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def read_part(path, archive: zipfile.ZipFile, part: str) -> bytes:
    """The bytes of one entry; a WorkbookError naming it on a bad CRC or damaged data."""
    try:
        return archive.read(part)
    except KeyError:
        raise WorkbookError(f"{path}: part {part} is missing") from None
    except ZIP_ERRORS as exc:
        raise WorkbookError(f"{path}: part {part} cannot be unzipped: {exc}") from None


def check_sheet_names(path, names: list[str]) -> None:
    """No sheets, or two sheets of the same name (Excel compares names ignoring case)."""
    if not names:
        raise WorkbookError(f"{path}: the workbook has no sheets")
    seen: dict[str, str] = {}
    for name in names:
        if not name:
            raise WorkbookError(f"{path}: xl/workbook.xml has a sheet without a name")
        key = name.casefold()
        if key in seen:
            raise WorkbookError(f"{path}: two sheets are named {seen[key]!r} and {name!r}; "
                                "Excel treats sheet names ignoring case and refuses such a "
                                "file: rename one")
        seen[key] = name


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` are the same file: same resolved path, or (both existing)
    the same device and inode (hard links, symbolic links, case-insensitive folders)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except OSError:
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


_TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.npl-xl-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.npl-xl-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove ``.NAME.npl-xl-PID-XXXX.tmp`` files in ``folder`` whose process is gone (a run
    killed mid-write); files of a running npl-xl and anything else are left alone."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_PATTERN.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        if _pid_alive(int(m.group("pid"))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(target, write: Callable[[object], None], inputs: tuple = (), *,
                     overwrite: bool = True) -> Path:
    """Write ``target`` through ``write(binary file)`` on a temporary file in its folder,
    then rename it into place: a failure never leaves half a file. The one atomic writer of
    the project.

    The new file gets mode 0666 minus the umask (as any file a user saves; mkstemp's 0600
    otherwise). ``inputs`` are files that must never be overwritten: a target that is one of
    them (compared by identity: path or inode) is refused. With ``overwrite=False`` an
    existing target, also one that appears while this writes, is refused and left as it
    was (a hard link claims the name; on a file system without them, a check then a
    rename). Stale temporaries of a killed run in the folder are removed first.
    """
    target = Path(target)
    for source in inputs:
        if same_file(source, target):
            raise WorkbookError(f"refusing to overwrite the input file {source} (the output "
                                f"{target} is the same file); choose another output file")
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise WorkbookError(f"cannot write {target}: it is a folder")
    exists = WorkbookError(f"{target} exists; npl-xl never overwrites a file: choose another "
                           "name")
    if not overwrite and target.exists():
        raise exists
    remove_stale_temporaries(folder)
    fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(temp_name, 0o666 & ~_umask())
        if overwrite:
            os.replace(temp_name, target)
        else:
            _claim(temp_name, target)
    except FileExistsError:
        raise exists from None
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
    return target


def _claim(temp_name: str, target: Path) -> None:
    """Give ``temp_name`` the name ``target`` unless that name is taken (FileExistsError)."""
    try:
        os.link(temp_name, target)  # fails if the name was taken meanwhile
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then rename
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(temp_name, target)
