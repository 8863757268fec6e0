"""What a gallery ``.npz`` declares, read before anything is inflated: a 2 MB file can hold 2 GiB of
zeros, and numpy would allocate and inflate all of it before any check could run. Each member's
``.npy`` header (its shape and dtype, in the member's first bytes) and the zip's declared sizes
are checked against the limits table and against each other, so a bomb is refused in
milliseconds."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from repmet.errors import UserError
from repmet.limits import MAX_CLASSES, MAX_EMBEDDING_DIM, MAX_GALLERY_BYTES, MAX_LABEL_CHARS, MAX_REPS_PER_CLASS

MAX_MEMBERS = 16  # a gallery has 5
MAX_SCALAR_CHARS = 256  # the format name and the fingerprint
REMEDY = "enroll the classes again and save a new gallery"


def check_declared_sizes(npz: Path, shape: tuple[int, int] | None = None) -> None:
    """A UserError if a member of ``npz`` declares a size beyond the limits, a size its header
    contradicts, or (K, D) other than ``shape``. Reads only headers."""
    try:
        with zipfile.ZipFile(npz) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise UserError(f"gallery {npz} holds {len(members)} files; a gallery has 5; {REMEDY}")
            if "format.npy" not in {info.filename for info in members}:
                shape = None  # not this version's gallery at all: the reader says so, not a shape mismatch
            for info in members:
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    dims, dtype, header_bytes = _npy_header(member, npz, name)
                stored = header_bytes + int(np.prod(dims, dtype=np.float64)) * dtype.itemsize
                if stored != info.file_size:
                    raise UserError(f"gallery {npz} is damaged: {name} declares {info.file_size} bytes but its "
                                    f"header describes {stored}; {REMEDY}")
                _check_member(npz, name, dims, dtype, shape)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:  # zlib: a damaged deflated member
        raise UserError(f"{npz} is not a repmet gallery (cannot read it as .npz: {exc}); {REMEDY}") from None


def _npy_header(member, npz: Path, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        dims, _, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        dims, _, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise UserError(f"gallery {npz}: {name} is a .npy of version {version}, not one numpy.savez writes; "
                        f"{REMEDY}")
    if dtype.hasobject:  # would need pickle, which a gallery never uses
        raise UserError(f"gallery {npz}: {name} holds Python objects, not a plain array; {REMEDY}")
    return tuple(int(d) for d in dims), dtype, member.tell()


def _check_member(npz: Path, name: str, dims: tuple[int, ...], dtype: np.dtype, shape) -> None:
    def refuse(what: str) -> None:
        raise UserError(f"gallery {npz}: {name} {what}; {REMEDY}")

    if name in ("format", "fingerprint") and (dims != () or dtype.itemsize > 4 * MAX_SCALAR_CHARS):
        refuse(f"must be one short string, got {dtype} {dims}")
    if name in ("labels", "counts") and len(dims) == 1 and dims[0] > MAX_CLASSES:
        refuse(f"lists {dims[0]} classes; the limit is {MAX_CLASSES}")
    if name == "labels" and dtype.kind == "U" and dtype.itemsize // 4 > MAX_LABEL_CHARS:
        refuse(f"holds labels of up to {dtype.itemsize // 4} characters; the limit is {MAX_LABEL_CHARS}")
    if int(np.prod(dims, dtype=np.float64)) * dtype.itemsize > MAX_GALLERY_BYTES:
        refuse(f"declares {dims} of {dtype}, more than the limit of {MAX_GALLERY_BYTES} bytes")
    if name == "representatives" and len(dims) == 3:  # other shapes: the reader names what is wrong
        classes, k, dim = dims
        if classes > MAX_CLASSES or k > MAX_REPS_PER_CLASS or dim > MAX_EMBEDDING_DIM:
            refuse(f"declares {dims}; the limits are {MAX_CLASSES} classes, {MAX_REPS_PER_CLASS} representatives "
                   f"per class and {MAX_EMBEDDING_DIM} dimensions")
        if shape is not None and (k, dim) != tuple(shape):  # the same sentence as a foreign fingerprint's
            raise UserError(f"gallery {npz} was made with another model: it holds {k} x {dim}-d representatives "
                            f"per class, this model needs {shape[0]} x {shape[1]}-d; {REMEDY}")
        if classes * k * dim * dtype.itemsize > MAX_GALLERY_BYTES:
            refuse(f"declares {classes * k * dim * dtype.itemsize} bytes, more than the limit of "
                   f"{MAX_GALLERY_BYTES}")
