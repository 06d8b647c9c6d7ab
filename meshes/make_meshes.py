"""Generate the example meshes in this folder with the gmsh Python API.

    pip install -e ".[mesh]"          # the gmsh package from PyPI
    python meshes/make_meshes.py      # rewrites meshes/*.msh (gmsh 4.1 ASCII)

Every mesh has a physical group for its cells ("domain") and one per named boundary part;
pinnkit turns the boundary groups into names usable in ``on=`` (`pk.Mesh.read`). Sizes are
chosen so each file stays well under 2 MB. Meshing is deterministic for a given gmsh
version (gmsh 4.15.2 made the committed files).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _start(name: str):
    import gmsh
    if not gmsh.isInitialized():
        gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
    gmsh.option.setNumber("Mesh.Binary", 0)
    gmsh.option.setNumber("Mesh.RandomSeed", 1)
    gmsh.clear()
    gmsh.model.add(name)
    return gmsh


def _name_boundary(gmsh, dim: int, classify) -> None:
    """One physical group per name that ``classify(tag, bbox)`` gives each boundary entity."""
    groups: dict[str, list[int]] = {}
    cells = gmsh.model.getEntities(dim)
    for _, tag in gmsh.model.getBoundary(cells, combined=True, oriented=False):
        name = classify(abs(tag), gmsh.model.getBoundingBox(dim - 1, abs(tag)))
        groups.setdefault(name, []).append(abs(tag))
    for name, tags in sorted(groups.items()):
        gmsh.model.setPhysicalName(dim - 1, gmsh.model.addPhysicalGroup(dim - 1, tags), name)
    gmsh.model.setPhysicalName(dim, gmsh.model.addPhysicalGroup(dim, [t for _, t in cells]), "domain")


def _finish(gmsh, dim: int, h: float, path: Path) -> Path:
    gmsh.option.setNumber("Mesh.MeshSizeMax", h)
    gmsh.option.setNumber("Mesh.MeshSizeMin", h / 4)
    gmsh.model.mesh.generate(dim)
    gmsh.write(str(path))
    return path


def lshape(h: float = 0.05) -> Path:
    """[-1, 1]^2 minus [0, 1] x [-1, 0]; the two edges at the re-entrant corner are "corner",
    the rest "outer"."""
    gmsh = _start("lshape")
    occ = gmsh.model.occ
    pts = [(-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1)]
    p = [occ.addPoint(x, y, 0) for x, y in pts]
    lines = [occ.addLine(p[i], p[(i + 1) % len(p)]) for i in range(len(p))]
    occ.addPlaneSurface([occ.addCurveLoop(lines)])
    occ.synchronize()

    def classify(tag, bb):
        xmin, ymin, _, xmax, ymax, _ = bb
        at_corner = (abs(xmin) < 1e-6 and abs(xmax) < 1e-6 and ymax < 1e-6) or \
                    (abs(ymin) < 1e-6 and abs(ymax) < 1e-6 and xmin > -1e-6)
        return "corner" if at_corner else "outer"

    _name_boundary(gmsh, 2, classify)
    return _finish(gmsh, 2, h, HERE / "lshape.msh")


def disk(h: float = 0.06) -> Path:
    """The unit disk centred at the origin; boundary "rim"."""
    gmsh = _start("disk")
    gmsh.model.occ.addDisk(0, 0, 0, 1, 1)
    gmsh.model.occ.synchronize()
    _name_boundary(gmsh, 2, lambda tag, bb: "rim")
    return _finish(gmsh, 2, h, HERE / "disk.msh")


def plate_with_hole(h: float = 0.06) -> Path:
    """[-1, 1]^2 minus the disk of radius 0.3 at the origin; boundaries "outer" and "hole"."""
    gmsh = _start("plate_with_hole")
    occ = gmsh.model.occ
    occ.cut([(2, occ.addRectangle(-1, -1, 0, 2, 2))], [(2, occ.addDisk(0, 0, 0, 0.3, 0.3))])
    occ.synchronize()
    _name_boundary(gmsh, 2, lambda tag, bb: "hole" if max(map(abs, bb)) < 0.31 else "outer")
    _refine_near(gmsh, "hole", h / 2, h, 0.4)   # the solution varies fastest at the hole
    return _finish(gmsh, 2, h, HERE / "plate_with_hole.msh")


def channel_cylinder(h: float = 0.03) -> Path:
    """The DFG flow-around-a-cylinder channel [0, 2.2] x [0, 0.41] minus the disk of radius
    0.05 at (0.2, 0.2) (Schäfer & Turek 1996); boundaries inlet, outlet, walls, cylinder."""
    gmsh = _start("channel_cylinder")
    occ = gmsh.model.occ
    occ.cut([(2, occ.addRectangle(0, 0, 0, 2.2, 0.41))], [(2, occ.addDisk(0.2, 0.2, 0, 0.05, 0.05))])
    occ.synchronize()

    def classify(tag, bb):
        xmin, ymin, _, xmax, ymax, _ = bb
        if xmax < 1e-6:
            return "inlet"
        if xmin > 2.2 - 1e-6:
            return "outlet"
        if ymax < 1e-6 or ymin > 0.41 - 1e-6:
            return "walls"
        return "cylinder"

    _name_boundary(gmsh, 2, classify)
    _refine_near(gmsh, "cylinder", h / 4, h, 0.15)
    return _finish(gmsh, 2, h, HERE / "channel_cylinder.msh")


def box_with_hole(h: float = 0.12) -> Path:
    """The cube [-1, 1]^3 minus the ball of radius 0.4 at the origin; boundaries "outer"
    (the six faces) and "hole" (the sphere)."""
    gmsh = _start("box_with_hole")
    occ = gmsh.model.occ
    occ.cut([(3, occ.addBox(-1, -1, -1, 2, 2, 2))], [(3, occ.addSphere(0, 0, 0, 0.4))])
    occ.synchronize()
    _name_boundary(gmsh, 3, lambda tag, bb: "hole" if max(map(abs, bb)) < 0.41 else "outer")
    return _finish(gmsh, 3, h, HERE / "box_with_hole.msh")


def _refine_near(gmsh, group: str, fine: float, coarse: float, width: float) -> None:
    """Cell size ``fine`` on the curves of ``group``, growing to ``coarse`` over ``width``."""
    curves = gmsh.model.getEntitiesForPhysicalGroup(1, _group_tag(gmsh, 1, group))
    f = gmsh.model.mesh.field
    dist = f.add("Distance")
    f.setNumbers(dist, "CurvesList", list(curves))
    f.setNumber(dist, "Sampling", 200)
    thr = f.add("Threshold")
    f.setNumber(thr, "InField", dist)
    for key, v in (("SizeMin", fine), ("SizeMax", coarse), ("DistMin", 0.0), ("DistMax", width)):
        f.setNumber(thr, key, v)
    f.setAsBackgroundMesh(thr)


def _group_tag(gmsh, dim: int, name: str) -> int:
    for d, tag in gmsh.model.getPhysicalGroups(dim):
        if gmsh.model.getPhysicalName(d, tag) == name:
            return tag
    raise KeyError(name)


MESHES = {"lshape": lshape, "disk": disk, "plate_with_hole": plate_with_hole,
          "channel_cylinder": channel_cylinder, "box_with_hole": box_with_hole}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="meshes to make (default all)")
    args = p.parse_args()
    import gmsh
    gmsh.initialize()
    try:
        for name in args.names or MESHES:
            path = MESHES[name]()
            print(f"{path.relative_to(HERE.parent)}: {path.stat().st_size / 1e6:.2f} MB")
    finally:
        gmsh.finalize()


if __name__ == "__main__":
    main()
