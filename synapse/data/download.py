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

from .cache import subdir, temp_path

CHUNK = 1 << 16


class ChecksumError(RuntimeError):
    """A file whose digest is not the published one."""


class DownloadError(RuntimeError):
    """No mirror delivered the file; the message says where to put it by hand."""


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
    return ChecksumError(f"{filename}: {algorithm} mismatch ({where}): expected {expected}, got {got}")


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
    with ``download=False``, reported). Raises :class:`ChecksumError` when only
    wrong bytes could be found, :class:`DownloadError` when no mirror answered,
    :class:`FileNotFoundError` when downloads are off and the file is absent.
    """
    algorithm, expected = _expected_digest(sha256, md5)
    dest = subdir(cache_dir, subfolder) / filename
    by_hand = (f"download it yourself from one of {list(urls)} and put it at {dest} "
               f"({algorithm} {expected})")
    if dest.exists():
        got = file_digest(dest, algorithm)
        if got == expected:
            return dest
        if not download:
            raise _mismatch(filename, f"cached at {dest}", algorithm, expected, got)
        log(f"[synapse.data] {dest} has the wrong {algorithm} ({got}); downloading it again")
    elif not download:
        raise FileNotFoundError(f"{filename} is not in the cache and downloads are off: {by_hand}")

    failures, mismatches = [], []
    for url in urls:
        log(f"[synapse.data] downloading {url} -> {dest}")
        try:
            _download_to(url, dest, algorithm, expected, timeout)
            return dest
        except ChecksumError as err:
            mismatches.append(err)
        except (OSError, http.client.HTTPException, DownloadError, ValueError) as err:
            # URLError and timeouts are OSErrors; a connection dropped midway
            # raises http.client.IncompleteRead; a malformed URL, ValueError.
            failures.append(f"{url}: {type(err).__name__}: {err}")
    if mismatches:
        raise ChecksumError("; ".join(str(e) for e in mismatches) + f". To fix by hand: {by_hand}")
    raise DownloadError(f"could not download {filename} ({'; '.join(failures)}). "
                        f"Without network, {by_hand}")
