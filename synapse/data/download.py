"""Checksummed, atomic downloads into the cache.

A file is streamed to a hidden temporary name in the cache folder, hashed on
the way, and renamed to its real name only once the digest matches. Whatever
goes wrong (mismatch, dropped connection, timeout, Ctrl-C) the temporary file
is removed, so a file under its real name has always been verified.
"""
import hashlib
import http.client
import os
import urllib.request

from ..errors import DataError
from .cache import subdir, temp_path

CHUNK = 1 << 16


class ChecksumError(DataError):
    """A file whose digest is not the published one; the message shows both digests."""


class DownloadError(DataError):
    """No mirror delivered the file; the message says what to download and where to put it."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file that is absent (and may not be downloaded); the message says where it goes."""


def one_line(err):
    """``err`` as ``Type: text`` on one line (foreign messages may span several)."""
    return f"{type(err).__name__}: " + " ".join(str(err).split())


def _expected_digest(sha256, md5):
    if (sha256 is None) == (md5 is None):
        raise ValueError("give exactly one of sha256= or md5=")
    return ("sha256", sha256.lower()) if sha256 is not None else ("md5", md5.lower())


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mismatch(filename, where, algorithm, expected, got):
    return ChecksumError(f"{filename} {where} has {algorithm} {got}, expected {expected}")


def _download_to(url, dest, algorithm, expected, timeout):
    """Stream ``url`` into a temp file next to ``dest``; rename only if the digest matches."""
    tmp = temp_path(dest)
    try:
        h = hashlib.new(algorithm)
        received = 0
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            length = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(CHUNK), b""):
                h.update(block)
                out.write(block)
                received += len(block)
            out.flush()
            os.fsync(out.fileno())
        if length is not None and received != int(length):
            raise DownloadError(f"{url}: connection closed after {received:,} of {int(length):,} bytes")
        got = h.hexdigest()
        if got != expected:
            raise _mismatch(dest.name, f"downloaded from {url}", algorithm, expected, got)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(urls, filename, sha256=None, md5=None, cache_dir=None, subfolder="",
          download=True, timeout=30.0, log=print):
    """Path of ``filename`` in the cache, verified; downloaded from ``urls`` if needed.

    ``urls`` are full URLs of the same file (mirrors), tried in order. A cached
    file is re-hashed on every call; a wrong one is replaced by a download (or,
    with ``download=False``, reported with both digests). Raises
    :class:`ChecksumError` when only wrong bytes could be found,
    :class:`DownloadError` when no mirror answered, :class:`DataNotFoundError`
    when downloads are off and the file is absent. Every message is one line
    naming the file, what to download (URL and digest) and where to put it.
    """
    algorithm, expected = _expected_digest(sha256, md5)
    dest = subdir(cache_dir, subfolder) / filename
    by_hand = f"download {' or '.join(urls)} ({algorithm} {expected}) and put it at {dest}"
    stale = None
    if dest.exists():
        if not dest.is_file():
            raise DataError(f"{dest}: not a file; remove it, then {by_hand}")
        got = file_digest(dest, algorithm)
        if got == expected:
            return dest
        stale = f"{dest} has {algorithm} {got}, expected {expected}"
        if not download:
            raise ChecksumError(f"{stale}: a damaged or different file; delete it and allow "
                                f"downloads, or replace it with {' or '.join(urls)}")
        log(f"[synapse.data] {stale}; downloading it again")
    elif not download:
        raise DataNotFoundError(f"{filename} is not in {dest.parent} and downloads are off: "
                                f"{by_hand}")

    failures, mismatches = [], []
    for url in urls:
        log(f"[synapse.data] downloading {url} -> {dest}")
        try:
            _download_to(url, dest, algorithm, expected, timeout)
            return dest
        except ChecksumError as err:
            mismatches.append(str(err))
        except (OSError, http.client.HTTPException, DownloadError, ValueError) as err:
            # URLError and timeouts are OSErrors; a connection dropped midway
            # raises http.client.IncompleteRead; a malformed URL, ValueError.
            failures.append(f"{url}: {one_line(err)}")
    kept = f"; the wrong file {stale} is still there" if stale else ""
    if mismatches:
        raise ChecksumError("; ".join(mismatches) + f"{kept}. To fix by hand: {by_hand}")
    raise DownloadError(f"could not download {filename} ({'; '.join(failures)}){kept}. "
                        f"Without network: {by_hand}")
