import numpy as np
import pytest

import pinnkit as pk
from pinnkit.geometry import sample_unit_cube

x, y, z, t = pk.coords("x y z t")


def _arr(d, names):
    return np.stack([d[n] for n in names], axis=1)


def test_interval_boundary_and_normals():
    dom = pk.Interval(x, -1, 2)
    assert dom.boundary_names == ["x_min", "x_max"]
    P, N = dom.sample_boundary(10, on="x_min")
    assert np.all(P["x"] == -1) and np.all(N["x"] == -1)
    P, N = dom.sample_boundary(10, on="x_max")
    assert np.all(P["x"] == 2) and np.all(N["x"] == 1)


def test_rectangle_faces_normals():
    dom = pk.Rectangle((x, y), (0, 0), (2, 1))
    expected = {"x_min": (-1, 0), "x_max": (1, 0), "y_min": (0, -1), "y_max": (0, 1)}
    for name, n in expected.items():
        P, N = dom.sample_boundary(50, on=name)
        assert np.allclose(_arr(N, "xy"), n)
        assert np.all(np.abs(dom.sdf(_arr(P, "xy"))) < 1e-12)
    # length weighting: x faces have length 1, y faces length 2
    P, _ = dom.sample_boundary(6000, seed=3)
    on_y = np.isclose(P["y"], 0) | np.isclose(P["y"], 1)
    assert abs(on_y.mean() - 4 / 6) < 0.03


def test_box_3d_normals():
    dom = pk.Box((x, y, z), (0, 0, 0), (1, 2, 3))
    assert len(dom.boundary_names) == 6
    P, N = dom.sample_boundary(500, seed=1)
    A, Nn = _arr(P, "xyz"), _arr(N, "xyz")
    assert np.allclose(np.linalg.norm(Nn, axis=1), 1)
    for axis, (lo, hi) in enumerate([(0, 1), (0, 2), (0, 3)]):
        at_hi = np.isclose(A[:, axis], hi)
        assert np.all(Nn[at_hi, axis] == 1)


def test_disk_normals_match_analytic():
    dom = pk.Disk((x, y), (0.3, -0.2), 0.7)
    P, N = dom.sample_boundary(400, seed=0)
    r = _arr(P, "xy") - [0.3, -0.2]
    analytic = r / np.linalg.norm(r, axis=1, keepdims=True)
    assert np.all(np.sum(analytic * _arr(N, "xy"), axis=1) >= 0.999)
    assert np.allclose(np.linalg.norm(r, axis=1), 0.7)


def test_polygon_normals_either_orientation():
    tri_cw = [(0, 0), (0, 1), (1, 0)]
    dom = pk.Polygon((x, y), tri_cw)
    P, N = dom.sample_boundary(300, seed=2)
    A, Nn = _arr(P, "xy"), _arr(N, "xy")
    # outward: a small step along n leaves the triangle
    assert not dom.contains({"x": A[:, 0] + 1e-3 * Nn[:, 0], "y": A[:, 1] + 1e-3 * Nn[:, 1]}).any()
    assert dom.contains({"x": A[:, 0] - 1e-3 * Nn[:, 0], "y": A[:, 1] - 1e-3 * Nn[:, 1]}).all()


def test_csg_difference_hole_normals_point_into_hole():
    dom = pk.Rectangle((x, y), (0, 0), (1, 1)) - pk.Disk((x, y), (0.5, 0.5), 0.2, name="hole")
    assert dom.boundary_names == ["x_min", "x_max", "y_min", "y_max", "hole"]
    P, N = dom.sample_boundary(300, on="hole", seed=0)
    r = _arr(P, "xy") - 0.5
    analytic = -r / np.linalg.norm(r, axis=1, keepdims=True)  # outward from the domain
    assert np.all(np.sum(analytic * _arr(N, "xy"), axis=1) >= 0.999)
    I = dom.sample_interior(2000, seed=0)
    assert np.all(np.hypot(I["x"] - 0.5, I["y"] - 0.5) > 0.2)
    assert dom.contains(I).all()


def test_csg_union_and_intersection_boundaries():
    a = pk.Rectangle((x, y), (0, 0), (1, 1))
    b = pk.Disk((x, y), (1, 0.5), 0.5, name="cap")
    u = a | b
    P, N = u.sample_boundary(1000, seed=0)
    A = _arr(P, "xy")
    assert np.all(np.abs(u.sdf(A)) < 1e-9)  # every sample lies on the union's boundary
    # no samples of the square's right face inside the disk
    assert not np.any(np.isclose(A[:, 0], 1) & (np.abs(A[:, 1] - 0.5) < 0.49))
    i = a & b
    P, N = i.sample_boundary(1000, seed=0)
    A, Nn = _arr(P, "xy"), _arr(N, "xy")
    assert np.all(np.abs(i.sdf(A)) < 1e-9)
    on_arc = ~np.isclose(A[:, 0], 1)
    r = A[on_arc] - [1, 0.5]
    assert np.all(np.sum(r / 0.5 * Nn[on_arc], axis=1) > 0.999)


def test_interior_sampling_methods_and_uniformity():
    dom = pk.Rectangle((x, y), (-1, 0), (1, 4))
    for method in ("sobol", "halton", "lhs", "uniform"):
        P = dom.sample_interior(1024, method=method, seed=1)
        A = _arr(P, "xy")
        assert A.shape == (1024, 2) and dom.contains(P).all()
        # each quadrant holds a quarter of the points
        q = ((A[:, 0] > 0).astype(int) + 2 * (A[:, 1] > 2)).tolist()
        counts = np.bincount(q, minlength=4)
        assert np.all(np.abs(counts - 256) < 60), (method, counts)
    with pytest.raises(pk.GeometryError, match="unknown sampling method 'grid'"):
        dom.sample_interior(10, method="grid")


def test_sampling_is_seeded():
    dom = pk.Disk((x, y), (0, 0), 1)
    a = dom.sample_interior(100, seed=5)
    b = dom.sample_interior(100, seed=5)
    c = dom.sample_interior(100, seed=6)
    assert np.array_equal(a["x"], b["x"]) and not np.array_equal(a["x"], c["x"])


def test_space_time_protocol():
    dom = pk.Disk((x, y), (0, 0), 1) * pk.TimeInterval(t, 0, 2)
    assert dom.names == ["x", "y", "t"] and dom.time == t
    I = dom.sample_interior(500)
    assert dom.contains(I).all() and I["t"].min() >= 0 and I["t"].max() <= 2
    P, N = dom.sample_boundary(100)
    assert np.allclose(np.hypot(P["x"], P["y"]), 1) and np.all(N["t"] == 0)
    P0 = dom.sample_initial(50)
    assert np.all(P0["t"] == 0) and np.all(np.hypot(P0["x"], P0["y"]) <= 1)


def test_contains_rejects_outside():
    dom = pk.Polygon((x, y), [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])  # L shape
    inside = dom.contains({"x": np.array([0.5, 1.5, 0.5, 1.5]), "y": np.array([0.5, 0.5, 1.5, 1.5])})
    assert inside.tolist() == [True, True, True, False]


def test_unknown_boundary_name_lists_names():
    dom = pk.Rectangle((x, y), (0, 0), (1, 1))
    with pytest.raises(pk.GeometryError, match="unknown boundary 'top'.*x_min, x_max, y_min, y_max"):
        dom.sample_boundary(4, on="top")


def test_bad_shapes():
    with pytest.raises(pk.GeometryError, match="lo < hi"):
        pk.Rectangle((x, y), (0, 0), (0, 1))
    with pytest.raises(pk.GeometryError, match="radius > 0"):
        pk.Disk((x, y), (0, 0), -1)
    with pytest.raises(pk.GeometryError, match="t0 < t1"):
        pk.TimeInterval(t, 1, 0)


def test_unit_cube_sampler_shape():
    assert sample_unit_cube(10, 3, "halton", 0).shape == (10, 3)


# ---------------------------------------------------------------- regularized CSG (issue 22)

def _xy(pts):
    pts = np.asarray(pts, float)
    return {"x": pts[:, 0], "y": pts[:, 1]}


def _xyz(pts):
    pts = np.asarray(pts, float)
    return {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]}


def _l_shape():
    return pk.Rectangle((x, y), (-1, -1), (1, 1)) - pk.Rectangle((x, y), (0, -1), (1, 0))


def test_difference_drops_shared_faces_2d():
    L = _l_shape()
    removed = [(1, -0.5), (0.5, -1), (0.5, -0.5), (1, -1), (1, -0.999), (0.001, -1)]
    kept = [(0, -0.5), (0.5, 0), (0, 0), (1, 0), (0, -1), (-1, -1), (1, 1), (-0.5, -0.5)]
    assert not L.contains(_xy(removed)).any()
    assert L.contains(_xy(kept)).all()
    P, N = L.sample_boundary(4000, seed=1)
    A, Nn = _arr(P, "xy"), _arr(N, "xy")
    on_removed = (np.isclose(A[:, 0], 1) & (A[:, 1] < 0)) | (np.isclose(A[:, 1], -1) & (A[:, 0] > 0))
    assert not on_removed.any()
    # the re-entrant faces are sampled with normals pointing into the notch, uniformly by length
    notch = (np.isclose(A[:, 0], 0) & (A[:, 1] < 0)) | (np.isclose(A[:, 1], 0) & (A[:, 0] > 0))
    assert abs(notch.mean() - 2 / 8) < 0.03    # 2 of the 8 units of perimeter
    assert np.all(Nn[np.isclose(A[:, 0], 0) & (A[:, 1] < 0)] == [1, 0])
    assert np.all(Nn[np.isclose(A[:, 1], 0) & (A[:, 0] > 0)] == [0, -1])


def test_difference_touching_from_outside_keeps_the_face():
    a = pk.Rectangle((x, y), (0, 0), (1, 1))
    d = a - pk.Rectangle((x, y), (1, 0), (2, 1))          # shares a's face x = 1 from outside
    assert d.contains(_xy([(1, 0.5), (1, 0), (1, 1)])).all()
    P, _ = d.sample_boundary(2000, on="x_max", seed=0)
    assert len(P["x"]) == 2000 and np.allclose(P["x"], 1)
    c = a - pk.Rectangle((x, y), (1, 1), (2, 2))          # touches at a corner only
    assert c.contains(_xy([(1, 1), (0.5, 0.5)])).all()


def test_union_glues_shared_faces_and_keeps_coincident_ones():
    a = pk.Rectangle((x, y), (0, 0), (1, 1))
    u = a | pk.Rectangle((x, y), (1, 0), (2, 1))           # glued along x = 1
    P = np.array([(1, 0.25), (1, 0.5), (1, 0.75)])
    assert np.all(u.classify(P, 1e-9) == -1)                # interior, not boundary
    assert np.all(u.classify(np.array([(1, 0), (1, 1)]), 1e-9) == 0)
    B, _ = u.sample_boundary(3000, seed=0)
    A = _arr(B, "xy")
    assert not np.any(np.isclose(A[:, 0], 1) & (A[:, 1] > 1e-9) & (A[:, 1] < 1 - 1e-9))
    # overlapping union: the bottom face y = 0 is one face, sampled once, uniformly
    v = a | pk.Rectangle((x, y), (0.5, 0), (1.5, 1))
    B, N = v.sample_boundary(6000, on="y_min", seed=0)
    bx = B["x"]
    assert np.allclose(B["y"], 0) and np.allclose(N["y"], -1)
    assert abs(np.mean((bx > 0.5) & (bx < 1)) - 1 / 3) < 0.03
    # touching corners: the corner belongs to the union and is a boundary point
    w = a | pk.Rectangle((x, y), (1, 1), (2, 2))
    assert w.classify(np.array([(1.0, 1.0)]), 1e-9).tolist() == [0]


def test_intersection_of_touching_shapes_is_empty_and_coincident_faces_stay():
    a = pk.Rectangle((x, y), (0, 0), (1, 1))
    i = a & pk.Rectangle((x, y), (1, 0), (2, 1))            # only a shared face: empty
    assert not i.contains(_xy([(1, 0.5), (1, 0), (1, 1)])).any()
    j = a & pk.Rectangle((x, y), (0.5, 0), (1.5, 1))
    B, N = j.sample_boundary(3000, on="y_min", seed=0)
    assert len(B["x"]) == 3000 and np.all((B["x"] >= 0.5) & (B["x"] <= 1))
    assert j.contains(_xy([(0.75, 0), (1, 0.5), (0.5, 1)])).all()


def test_regularized_csg_3d_faces_edges_corners():
    cube = pk.Box((x, y, z), (-1, -1, -1), (1, 1, 1))
    notch = pk.Box((x, y, z), (0, 0, 0), (1, 1, 1))
    d = cube - notch                                         # an octant cut out of the cube
    removed = [(1, 0.5, 0.5), (0.5, 1, 0.5), (0.5, 0.5, 1), (1, 1, 0.5), (1, 1, 1)]
    kept = [(0, 0.5, 0.5), (0.5, 0.5, 0), (0, 0, 0), (1, 0, 0.5), (1, -0.5, 0.5), (-1, 1, 1)]
    assert not d.contains(_xyz(removed)).any()
    assert d.contains(_xyz(kept)).all()
    P, N = d.sample_boundary(4000, seed=0)
    A = _arr(P, "xyz")
    assert np.all(d.classify(A, 1e-9) == 0)
    assert not np.any(np.all(A > 1e-9, axis=1))              # nothing on the removed octant faces
    # union glued along a face: face points interior; along an edge only: edge is boundary
    u = cube | pk.Box((x, y, z), (1, -1, -1), (3, 1, 1))
    assert np.all(u.classify(np.array([(1, 0, 0), (1, 0.5, -0.5)]), 1e-9) == -1)
    e = cube | pk.Box((x, y, z), (1, 1, -1), (3, 3, 1))     # shares the edge x = y = 1
    assert np.all(e.classify(np.array([(1, 1, 0), (1, 1, 0.9)]), 1e-9) == 0)
    c = cube & pk.Box((x, y, z), (1, 1, 1), (2, 2, 2))      # touches at a corner: empty
    assert not c.contains(_xyz([(1, 1, 1)])).any()


def test_ambiguous_automatic_name_after_csg_is_an_error():
    L = _l_shape()
    assert set(L.ambiguous_names()) == {"x_min", "y_max"}
    with pytest.raises(pk.GeometryError, match=r"'x_min' is ambiguous.*x = -1 with normal -x.*"
                                               r"x = 0 with normal \+x.*name="):
        L.sample_boundary(10, on="x_min")
    u = pk.field("u", x, y)
    with pytest.raises(pk.SpecError, match=r"condition 'neumann_u_x_min'.*ambiguous.*name="):
        pk.Problem("L", L, [pk.laplacian(u)], [pk.Dirichlet(u, 0, on=["x_max", "y_min"]),
                                               pk.Neumann(u, 0, on="x_min")])
    # unambiguous names of the same domain still work; naming the notch resolves it
    L.sample_boundary(10, on="x_max")
    named = pk.Rectangle((x, y), (-1, -1), (1, 1)) - pk.Rectangle((x, y), (0, -1), (1, 0), name="notch")
    assert named.ambiguous_names() == {}
    assert named.boundary_names == ["x_min", "x_max", "y_min", "y_max", "notch"]
    P, N = named.sample_boundary(500, on="x_min", seed=0)
    assert np.allclose(P["x"], -1) and np.allclose(N["x"], -1)
    # two default-named disks (an annulus without name=): their "disk" is ambiguous
    ring = pk.Disk((x, y), (0, 0), 1) - pk.Disk((x, y), (0, 0), 0.5)
    with pytest.raises(pk.GeometryError, match="'disk' is ambiguous"):
        ring.sample_boundary(10, on="disk")
    # names the user gave on purpose are never ambiguous (poisson2d_c's four "holes")
    holes = pk.Disk((x, y), (-0.3, 0), 0.1, name="holes") | pk.Disk((x, y), (0.3, 0), 0.1, name="holes")
    assert (pk.Rectangle((x, y), (-1, -1), (1, 1)) - holes).ambiguous_names() == {}
