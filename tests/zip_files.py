"""Zip and .npy files written by hand, for galleries that lie about themselves (bombs, wrong
headers): shared by the C++ and Python hostile-input tests."""

import struct
import zipfile
import zlib
from pathlib import Path


def npz_members(npz: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(npz) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip by hand: (name, data as stored in the zip, method (0 stored, 8 deflated), crc,
    declared uncompressed size); a size from 4 GiB on goes into a zip64 field, as zip writers do."""
    local, directory = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        big = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQ", 1, 8, size) if big else b""
        size32 = 0xFFFFFFFF if big else size
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, method, 0, 0x21, crc, len(data), size32,
                             len(name), len(extra)) + name.encode() + extra + data
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0x21, crc, len(data), size32,
                                 len(name), len(extra), 0, 0, 0, 0, offset) + name.encode() + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(local), 0)
    path.write_bytes(bytes(local + directory + end))
    return path


def stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, 0, zlib.crc32(data), len(data)


def npy_header(descr: str, shape: tuple) -> bytes:
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
