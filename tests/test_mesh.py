"""pk.Mesh: reading, named boundaries, sampling, normals, containment, export (issue: meshes)."""
import subprocess
import sys

import h5py
import meshio
import numpy as np
import pytest
import sympy
from scipy import stats

import pinnkit as pk
from pinnkit.cli import main
from pinnkit.errors import GeometryError

from conftest import ROOT, load_problem

MESHES = ROOT / "meshes"
EXAMPLES = {  # file -> (dimension, boundary names, measure of the exact geometry, tolerance)
    "lshape.msh": (2, {"outer", "corner"}, 3.0, 1e-12),
    "disk.msh": (2, {"rim"}, np.pi, 5e-3),
    "plate_with_hole.msh": (2, {"outer", "hole"}, 4 - np.pi * 0.09, 5e-3),
    "channel_cylinder.msh": (2, {"inlet", "outlet", "walls", "cylinder"}, 2.2 * 0.41 - np.pi * 0.0025, 1e-3),
    "box_with_hole.msh": (3, {"outer", "hole"}, 8 - 4 / 3 * np.pi * 0.4**3, 5e-3),
}


def _array(points: dict, names) -> np.ndarray:
    return np.stack([points[n] for n in names], axis=1)


def _file_facets(path, name: str) -> np.ndarray:
    """Corner coordinates (F, k, d) of the facets in physical group ``name``, read by meshio
    directly (independently of pk.Mesh)."""
    m = meshio.read(path)
    tag, dim = m.field_data[name]
    out = []
    for block, tags in zip(m.cells, m.cell_data["gmsh:physical"]):
        if meshio._mesh.topological_dimension[block.type] == dim:
            out.append(block.data[tags == tag])
    F = np.concatenate(out)
    d = 2 if dim == 1 else 3
    return m.points[F][:, :, :d]


def _distance_to_segments(P: np.ndarray, S: np.ndarray) -> np.ndarray:
    a, b = S[:, 0][None], S[:, 1][None]
    ab = b - a
    s = np.clip(np.sum((P[:, None] - a) * ab, axis=2) / np.sum(ab * ab, axis=2), 0, 1)
    return np.min(np.linalg.norm(P[:, None] - (a + s[..., None] * ab), axis=2), axis=1)


def _distance_to_triangles(P: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest triangle in T (F, 3, 3), on its plane when the
    projection falls inside (enough for points sampled on the triangles)."""
    a, b, c = T[:, 0], T[:, 1], T[:, 2]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    best = np.full(len(P), np.inf)
    for i in range(0, len(P), 200):
        p = P[i:i + 200, None]
        h = np.sum((p - a) * n, axis=2)
        q = p - h[..., None] * n
        # barycentric test of the projection
        v0, v1, v2 = b - a, c - a, q - a
        d00, d01, d11 = np.sum(v0 * v0, 1), np.sum(v0 * v1, 1), np.sum(v1 * v1, 1)
        d20, d21 = np.sum(v2 * v0, 2), np.sum(v2 * v1, 2)
        den = d00 * d11 - d01 * d01
        v = (d11 * d20 - d01 * d21) / den
        w = (d00 * d21 - d01 * d20) / den
        inside = (v >= -1e-9) & (w >= -1e-9) & (v + w <= 1 + 1e-9)
        best[i:i + 200] = np.min(np.where(inside, np.abs(h), np.inf), axis=1)
    return best


@pytest.mark.parametrize("fname", sorted(EXAMPLES))
def test_example_meshes_read(fname):
    dim, names, measure, tol = EXAMPLES[fname]
    m = pk.Mesh.read(MESHES / fname)
    assert m.dim == dim and set(m.boundary_names) == names
    assert abs(m.volume - measure) / measure < tol
    assert (MESHES / fname).stat().st_size < 2e6
    P = m.sample_interior(2000, seed=1)
    assert m.contains(P).all()
    lo, hi = m.bbox
    assert np.all(_array(P, m.names) >= lo) and np.all(_array(P, m.names) <= hi)


@pytest.mark.parametrize("fname,name", [("plate_with_hole.msh", "hole"), ("plate_with_hole.msh", "outer"),
                                        ("channel_cylinder.msh", "inlet"),
                                        ("channel_cylinder.msh", "cylinder"),
                                        ("box_with_hole.msh", "hole")])
def test_boundary_samples_lie_on_their_group(fname, name):
    m = pk.Mesh.read(MESHES / fname)
    P, N = m.sample_boundary(400, on=name, seed=3)
    X = _array(P, m.names)
    F = _file_facets(MESHES / fname, name)
    dist = _distance_to_segments(X, F) if m.dim == 2 else _distance_to_triangles(X, F)
    assert dist.max() < 1e-9
    assert np.allclose(np.linalg.norm(_array(N, m.names), axis=1), 1.0)
    others = [n for n in m.boundary_names if n != name]
    G = np.concatenate([_file_facets(MESHES / fname, o) for o in others])
    far = _distance_to_segments(X, G) if m.dim == 2 else _distance_to_triangles(X, G)
    assert np.mean(far > 1e-9) > 0.95     # only corner points may touch another group


def test_disk_normals_match_analytic():
    m = pk.Mesh.read(MESHES / "disk.msh")
    P, N = m.sample_boundary(1000, on="rim", seed=0)
    X, Nv = _array(P, m.names), _array(N, m.names)
    analytic = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert np.min(np.sum(Nv * analytic, axis=1)) >= 0.99
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=2e-3)   # chord sag of h = 0.06


def test_hole_normals_point_into_the_hole_and_3d_outward():
    plate = pk.Mesh.read(MESHES / "plate_with_hole.msh")
    P, N = plate.sample_boundary(300, on="hole", seed=0)
    assert np.all(np.sum(_array(P, plate.names) * _array(N, plate.names), axis=1) < -0.99 * 0.3)
    box = pk.Mesh.read(MESHES / "box_with_hole.msh")
    P, N = box.sample_boundary(500, on="outer", seed=0)
    X, Nv = _array(P, box.names), _array(N, box.names)
    face = np.argmax(np.abs(X), axis=1)
    expected = np.zeros_like(X)
    expected[np.arange(len(X)), face] = np.sign(X[np.arange(len(X)), face])
    assert np.min(np.sum(Nv * expected, axis=1)) > 1 - 1e-12


def test_inconsistent_cell_orientation_still_gives_outward_normals():
    m = meshio.read(MESHES / "disk.msh")
    tri = m.cells_dict["triangle"].copy()
    tri[::2] = tri[::2, ::-1]                       # flip every other triangle
    mesh = pk.Mesh(m.points, {"triangle": tri})
    assert mesh.boundary_names == []
    assert mesh.volume == pytest.approx(pk.Mesh.read(MESHES / "disk.msh").volume, rel=1e-12)
    P, N = mesh.sample_boundary(500, seed=2)
    X, Nv = _array(P, mesh.names), _array(N, mesh.names)
    assert np.min(np.sum(Nv * X, axis=1)) > 0.98


def test_interior_sampling_is_uniform_chi_square():
    """Counts in 12 bins made of whole triangles (grouped by centroid x) follow the bins' area."""
    m = pk.Mesh.read(MESHES / "plate_with_hole.msh")
    order = np.argsort(m.centroids[:, 0])
    bins = np.empty(len(order), int)
    bins[order] = np.arange(len(order)) * 12 // len(order)
    expected_frac = np.bincount(bins, weights=m.volumes) / m.volume
    n = 60000
    for method in ("uniform", "sobol"):
        P = m.sample_interior(n, method=method, seed=7)
        cell, _ = m.locate(_array(P, m.names))
        assert (cell >= 0).all()
        counts = np.bincount(bins[cell], minlength=12)
        chi2 = np.sum((counts - n * expected_frac) ** 2 / (n * expected_frac))
        p = stats.chi2.sf(chi2, df=11)
        assert p > 1e-3, (method, chi2)
    # Sobol is more even than random
    P = m.sample_interior(n, method="sobol", seed=7)
    counts = np.bincount(bins[m.locate(_array(P, m.names))[0]], minlength=12)
    assert np.max(np.abs(counts / n - expected_frac)) < 2e-3


def test_contains_matches_geometry():
    m = pk.Mesh.read(MESHES / "plate_with_hole.msh")
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.1, 1.1, (20000, 2))
    r = np.linalg.norm(X, axis=1)
    inside = m.contains({"x": X[:, 0], "y": X[:, 1]})
    exact = (np.abs(X).max(axis=1) <= 1) & (r >= 0.3)
    clear = np.abs(r - 0.3) > 2e-3            # the polygonal hole differs within the chord sag
    assert np.array_equal(inside[clear], exact[clear])


def test_quad_and_hex_meshes_from_arrays():
    # 3 x 2 quads on [0, 3] x [0, 2]
    xs, ys = np.meshgrid(np.arange(4.0), np.arange(3.0), indexing="ij")
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    idx = np.arange(12).reshape(4, 3)
    quads = np.array([[idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]]
                      for i in range(3) for j in range(2)])
    q = pk.Mesh(pts, {"quad": quads})
    assert q.volume == pytest.approx(6.0) and q.facet_measure.sum() == pytest.approx(10.0)
    # 2 x 2 x 2 hexahedra on [0, 2]^3
    g = np.stack(np.meshgrid(*[np.arange(3.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    I = np.arange(27).reshape(3, 3, 3)
    hexes = np.array([[I[i, j, k], I[i + 1, j, k], I[i + 1, j + 1, k], I[i, j + 1, k],
                       I[i, j, k + 1], I[i + 1, j, k + 1], I[i + 1, j + 1, k + 1], I[i, j + 1, k + 1]]
                      for i in range(2) for j in range(2) for k in range(2)])
    h = pk.Mesh(g, {"hexahedron": hexes})
    assert h.volume == pytest.approx(8.0) and h.facet_measure.sum() == pytest.approx(24.0)
    P, N = h.sample_boundary(300, seed=0)
    X, Nv = _array(P, h.names), _array(N, h.names)
    on_face = np.isclose(X, 0) | np.isclose(X, 2)
    assert on_face.any(axis=1).all()
    # the normal is the face's axis, pointing away from the centre
    assert np.all(np.sum(Nv * (X - 1.0), axis=1) > 0.99)
    assert np.allclose(np.abs(Nv).max(axis=1), 1.0)


def test_mesh_without_groups_from_vtu(tmp_path):
    m = meshio.read(MESHES / "disk.msh")
    path = tmp_path / "disk.vtu"
    meshio.write(path, meshio.Mesh(m.points, [("triangle", m.cells_dict["triangle"])]))
    mesh = pk.Mesh.read(path)
    assert mesh.boundary_names == []
    P, _ = mesh.sample_boundary(50, on="boundary", seed=0)
    assert np.allclose(np.hypot(P["x"], P["y"]), 1.0, atol=2e-3)
    with pytest.raises(GeometryError, match="unknown boundary 'rim'; boundaries of this domain: boundary"):
        mesh.sample_boundary(5, on="rim")


def test_unknown_boundary_name_lists_available():
    x, y = pk.coords("x y")
    u = pk.field("u", x, y)
    mesh = pk.Mesh.read(MESHES / "plate_with_hole.msh")
    with pytest.raises(pk.SpecError, match="unknown boundary 'holes'.*hole.*outer|unknown boundary 'holes'.*outer.*hole"):
        pk.Problem("p", mesh, [pk.laplacian(u)], [pk.Dirichlet(u, 0, on="holes")])


@pytest.mark.parametrize("content,suffix,message", [
    ("this is not a mesh\n", ".msh", "cannot read mesh"),
    ("x", ".unknownext", "cannot read mesh"),
])
def test_bad_files(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(GeometryError, match=message):
        pk.Mesh.read(path)
    with pytest.raises(GeometryError, match="does not exist"):
        pk.Mesh.read(tmp_path / "missing.msh")


def test_mesh_without_cells_of_needed_dimension(tmp_path):
    path = tmp_path / "lines.vtu"
    meshio.write(path, meshio.Mesh(np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]]), [("line", [[0, 1], [1, 2]])]))
    with pytest.raises(GeometryError, match=r"no 2-D or 3-D cells \(found line\)"):
        pk.Mesh.read(path)


def test_degenerate_cells_are_rejected():
    pts = np.array([[0.0, 0], [1, 0], [0, 1], [2, 0]])
    with pytest.raises(GeometryError, match="1 degenerate cell.*cell 1"):
        pk.Mesh(pts, {"triangle": [[0, 1, 2], [0, 1, 3]]})   # second: collinear
    with pytest.raises(GeometryError, match="outside 0..3"):
        pk.Mesh(pts, {"triangle": [[0, 1, 7]]})


def test_space_time_on_mesh_and_vertices():
    x, y, t = pk.coords("x y t")
    m = pk.Mesh.read(MESHES / "lshape.msh", coords=(x, y))
    st = m * pk.TimeInterval(t, 0, 2)
    P = st.sample_interior(500, seed=0)
    assert st.contains(P).all() and P["t"].min() >= 0 and P["t"].max() <= 2
    B, N = st.sample_boundary(100, on="corner", seed=0)
    assert np.all(N["t"] == 0) and np.all((np.abs(B["x"]) < 1e-12) | (np.abs(B["y"]) < 1e-12))
    I = st.sample_initial(100)
    assert np.all(I["t"] == 0)
    V = m.vertices("interior")
    assert len(V["x"]) + len(m.vertices("boundary")["x"]) == len(m.points)
    assert m.contains(V).all()


def test_reference_refuses_mesh_with_clear_message():
    problem = load_problem("poisson_plate_hole")["problem"]
    with pytest.raises(pk.UnsupportedSpecError, match="needs a shape domain.*exact solution"):
        pk.reference(problem)


def test_short_training_on_plate_with_hole():
    problem = load_problem("poisson_plate_hole")["problem"]
    sol = pk.train(problem, steps=600, lbfgs_steps=150, width=24, depth=3, interior_points=800,
                   boundary_points=200, mesh_vertices=True, quiet=True)
    m = pk.compare(sol, None, problem)["u"]
    assert m["l2re_exact"] < 2e-2


def test_mesh_vertices_option_needs_a_mesh():
    problem = load_problem("heat1d")["problem"]
    with pytest.raises(pk.TrainingError, match="mesh_vertices needs a domain on a pk.Mesh"):
        pk.train(problem, steps=1, lbfgs_steps=0, mesh_vertices=True, quiet=True)


FAST = ["--steps", "40", "--lbfgs-steps", "5", "--width", "12", "--depth", "2",
        "--interior-points", "300", "--boundary-points", "60", "--initial-points", "60", "--quiet"]


def test_export_on_mesh_round_trip(tmp_path):
    assert main([str(ROOT / "problems" / "poisson_plate_hole.py"), "--out", str(tmp_path), *FAST]) == 0
    import json
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reference"]["skipped"] and report["reference"]["compared_with"] == "exact"
    assert "shape domain" in report["reference"]["reason"]
    back = meshio.read(tmp_path / "fields.xdmf")
    src = meshio.read(MESHES / "plate_with_hole.msh")
    with h5py.File(tmp_path / "fields.h5") as h5:
        assert np.abs(h5["mesh/points"][()] - src.points[:, :2]).max() <= 1e-12
        assert np.array_equal(h5["mesh/cells/triangle"][()], src.cells_dict["triangle"])
        assert np.abs(back.points[:, :2] - h5["mesh/points"][()]).max() <= 1e-12
        assert np.array_equal(back.cells_dict["triangle"], src.cells_dict["triangle"])
        for label in ("pinn", "exact", "error"):
            assert np.abs(back.point_data[f"{label}_u"] - h5[f"{label}/u"][()]).max() <= 1e-12
        # report metric recomputed from the file
        p, e = h5["pinn/u"][()], h5["exact/u"][()]
    assert np.linalg.norm(p - e) / np.linalg.norm(e) == pytest.approx(report["metrics"]["u"]["l2re_exact"],
                                                                      rel=1e-12)
    # the exact solution at the vertices is the formula
    ex = sympy.lambdify(pk.coords("x y"), load_problem("poisson_plate_hole")["exact"])
    assert np.abs(e - ex(src.points[:, 0], src.points[:, 1])).max() <= 1e-12
    assert (tmp_path / "plots" / "u.png").is_file()


def test_time_dependent_3d_and_time_series_export(tmp_path):
    out = tmp_path / "heat"
    assert main([str(ROOT / "problems" / "heat_lshape.py"), "--out", str(out), *FAST]) == 0
    from meshio.xdmf import TimeSeriesReader
    with h5py.File(out / "fields.h5") as h5:
        assert h5["pinn/u"].shape == (101, len(h5["mesh/points"]))
        with TimeSeriesReader(str(out / "fields.xdmf")) as rd:
            points, cells = rd.read_points_cells()
            tk, pdata, _ = rd.read_data(50)
        assert tk == pytest.approx(h5["coords/t"][50])
        assert np.abs(pdata["exact_u"] - h5["exact/u"][50]).max() <= 1e-12
    out3 = tmp_path / "lap"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "solve.py"), "problems/laplace3d.py",
                        "--out", str(out3), *FAST], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    back = meshio.read(out3 / "fields.xdmf")
    assert "tetra" in back.cells_dict and "pinn_u" in back.point_data
