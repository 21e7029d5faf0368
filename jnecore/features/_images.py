"""Image sources for feature extraction: a folder of image files, NSD's ``nsd_stimuli.hdf5``
(``imgBrick``) or a uint8 ``.npy`` array, all read batch by batch (never whole).

Every source has ``ids`` (N,) stimulus ids, ``len()`` and ``read(start, stop)``, which returns
the images ``start:stop`` as a list of RGB :class:`PIL.Image.Image`. Images that cannot be
decoded raise :class:`~jnecore.validation.InputError` naming the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..validation import InputError

__all__ = ["ImageSource", "FolderImages", "ArrayImages", "open_images", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ImageSource:
    """Base: ``ids`` (N,) str, ``kind``, ``path``; ``read(start, stop)`` -> list of RGB PIL images."""

    kind = "?"

    def __init__(self, path, ids):
        self.path = Path(path)
        self.ids = list(ids)

    def __len__(self):
        return len(self.ids)

    def read(self, start: int, stop: int):
        raise NotImplementedError

    def close(self):
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "n_images": len(self)}


class FolderImages(ImageSource):
    """Image files of a folder in sorted order; a file's name without extension is its id."""

    kind = "folder"

    def __init__(self, path):
        path = Path(path)
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(path, f"holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        ids = [p.stem for p in files]
        seen = {}
        for p in files:
            if p.stem in seen:
                raise InputError(p, f"has the same name as {seen[p.stem].name}: stimulus ids (file names "
                                    "without extension) must be unique")
            seen[p.stem] = p
        super().__init__(path, ids)
        self.files = files

    def read(self, start, stop):
        from PIL import Image

        out = []
        for p in self.files[start:stop]:
            try:
                with Image.open(p) as im:
                    out.append(im.convert("RGB"))
            except Exception as exc:  # PIL raises many types for a broken file
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(p, f"cannot be decoded as an image ({msg})") from None
        return out


class ArrayImages(ImageSource):
    """Rows of a uint8 (N, H, W, 3) array: an HDF5 dataset (NSD's ``imgBrick``) or a memory-mapped
    ``.npy``; ids are the row indices (for NSD, the 0-based 73k ids)."""

    def __init__(self, path, array, kind, handle=None):
        self.kind = kind
        self._array = array
        self._handle = handle
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            self.close()
            raise InputError(path, f"must hold uint8 images (N, H, W, 3), got {array.dtype} {tuple(array.shape)}")
        if array.shape[0] == 0:
            self.close()
            raise InputError(path, "holds no images")
        super().__init__(path, [str(i) for i in range(array.shape[0])])

    def read(self, start, stop):
        from PIL import Image

        block = np.asarray(self._array[start:stop])  # one batch read from disk
        return [Image.fromarray(a, mode="RGB") for a in block]

    def describe(self) -> dict:
        return {**super().describe(), "shape": [int(x) for x in self._array.shape]}

    def close(self):
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def open_images(spec) -> ImageSource:
    """The image source ``spec`` names: a folder, ``FILE.hdf5[:dataset]`` (default ``imgBrick``)
    or ``FILE.npy``."""
    from ..io._readers import check_file, sniff, split_key

    path, key = split_key(spec)
    if path.is_dir():
        return FolderImages(path)
    check_file(path, what="folder of images, .hdf5 or .npy")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        import h5py

        if sniff(path) != "hdf5":
            raise InputError(path, "is not an HDF5 file")
        key = key or "imgBrick"
        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(path, f"not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
        if key not in fh or not isinstance(fh[key], h5py.Dataset):
            names = [n for n in fh.keys()]
            fh.close()
            raise InputError(path, f"has no dataset {key!r} (it has {', '.join(names[:8]) or 'none'}): "
                                   "name it as FILE:dataset")
        return ArrayImages(path, fh[key], "hdf5", handle=fh)
    if suffix == ".npy":
        if sniff(path) != "npy":
            raise InputError(path, "is not a .npy file")
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise InputError(path, f"not a readable .npy array ({str(exc).splitlines()[0]})") from None
        return ArrayImages(path, arr, "npy")
    raise InputError(path, f"unsupported image source {suffix!r}: give a folder of images, an .hdf5 or a .npy")
