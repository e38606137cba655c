"""cgcnn: apply the trained CGCNN ensemble to crystal structures (``matrepro predict cgcnn``), and
the applicability checks the screening shares.

The model folder ``models/cgcnn/ensemble/`` (stage ``cgcnn_model``) holds the paper-protocol
checkpoints of the screening subset (one per seed and target, txie-93 layout, loaded with
``weights_only=True`` and strict keys), the atom-feature table they were trained with
(``atom_init.json``), the training crystals' learned features (``train_features.npz``) and
``card.json``.

Per input structure (a CIF/POSCAR file, or every such file of a folder):

* errors (not predicted): a file pymatgen cannot read; a disordered structure (a site with
  partial occupancy: CGCNN needs one element per site); an element without an atom-feature row;
  a site with no neighbour within the graph radius (an isolated atom: the graph would be empty);
* predictions of log10 G_VRH and log10 K_VRH (GPa): the ensemble mean, its spread (standard
  deviation over seeds) and 10^mean in GPa;
* flags: ``unseen_elements`` (elements absent from every training crystal);
  ``molecular_or_isolated`` (Larsen dimension 0 of the CrystalNN-bonded network: isolated
  molecules or atoms, e.g. solid N2); ``isolated_atoms`` (a bonded component that is one atom); ``far_from_training`` (Euclidean distance from the
  crystal's learned features, those of the first G member before its output layer, to the
  nearest training crystal, above the 95th percentile of the test split's distances);
  ``above_training_max_G`` / ``_K`` (a prediction above the largest modulus of the training
  rows, which is where diamond sits: an extrapolation, not a discovery).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.batch_input import RowErrors, structure_files
from ...core.cards import read_card, write_card
from ...core.errors import DataError
from ...features.applicability import NearestTrainDistance, bonded_fragments, partial_occupancy
from ...features.crystal import GaussianDistance, collate, load_atom_init, structure_graph
from ...models.crystal import load_checkpoint
from .data import ATOM_INIT, TARGETS

DEFAULT = "ensemble"
STAGE = "cgcnn_model"
INPUT = "a CIF or POSCAR file, or a folder of them (read by pymatgen); ordered structures only"
FEATURES = "train_features.npz"
QUANTILE = 0.95


def ensemble_members(model_dir: str | Path, subset: str) -> dict[str, list[Path]]:
    model_dir = Path(model_dir)
    out = {t: sorted(model_dir.glob(f"{t}_{subset}_random_seed*.pth.tar")) for t in TARGETS}
    for t, paths in out.items():
        if not paths:
            raise DataError(model_dir, f"no trained {t} checkpoints for subset {subset!r} (run cgcnn_train@paper)")
    return out


def atom_batches(sizes: np.ndarray, max_atoms: int = 2048) -> list[np.ndarray]:
    """Indices grouped into batches of similar-sized crystals with at most ``max_atoms`` atoms each
    (a batch holds at least one crystal). On a CPU, batches of ~1-2k atoms run about 3x faster per
    atom than 512 large crystals at once (the (atoms x 12 x 128) intermediates stay in cache)."""
    order = np.argsort(sizes, kind="stable")
    batches, cur, n = [], [], 0
    for i in order:
        if cur and n + sizes[i] > max_atoms:
            batches.append(np.array(cur))
            cur, n = [], 0
        cur.append(i)
        n += int(sizes[i])
    if cur:
        batches.append(np.array(cur))
    return batches


@torch.no_grad()
def crystal_features(model, graphs, gdf: GaussianDistance) -> np.ndarray:
    """(n, h_fea_len) learned crystal features (before the output layer), eval mode."""
    model.eval()
    out = np.zeros((len(graphs), model.fc_out.in_features), np.float32)
    for idx in atom_batches([g.n_atoms for g in graphs]):
        out[idx] = model.crystal_features(*collate([graphs[i] for i in idx], gdf).inputs()).numpy()
    return out


def export_ensemble(folder, members: dict[str, list[Path]], atom_init: Path, graph_cfg: dict, train_graphs: list,
                    test_graphs: list, train_y: dict[str, np.ndarray], metrics: dict, profile: str,
                    subset: str) -> dict:
    """Write ``folder``: member copies, atom table, training features, card. ``members``: target ->
    checkpoint paths; ``train_y``: target -> training log10 moduli (their maximum bounds the flags)."""
    from pymatgen.core import Element

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for t, paths in members.items():
        names[t] = []
        for p in paths:
            shutil.copyfile(p, folder / Path(p).name)
            names[t].append(Path(p).name)
    shutil.copyfile(atom_init, folder / "atom_init.json")
    gdf = GaussianDistance(dmin=graph_cfg.get("dmin", 0.0), dmax=graph_cfg["radius"], step=graph_cfg["step"])
    feat_model = load_checkpoint(folder / names["G"][0])[0]
    train_f = crystal_features(feat_model, train_graphs, gdf)
    dist = NearestTrainDistance(train_f, metric="euclidean")
    dist.calibrate(crystal_features(feat_model, test_graphs, gdf), QUANTILE)
    np.savez_compressed(folder / FEATURES, features=train_f)
    zs = sorted({int(z) for g in train_graphs for z in g.z})
    card = {"paper": "cgcnn", "name": "ensemble", "target": "log10 shear and bulk modulus (G_VRH, K_VRH)",
            "unit": "log10(GPa)", "profile": profile, "stage": STAGE, "subset": subset,
            "targets": {t: TARGETS[t]["label"] for t in members},
            "training": {"rows": {"train": len(train_graphs), "test": len(test_graphs)},
                         "elements": [Element.from_Z(z).symbol for z in zs], "n_elements": len(zs),
                         "max_log10": {t: float(np.max(y)) for t, y in train_y.items()},
                         "max_GPa": {t: float(10 ** np.max(y)) for t, y in train_y.items()}},
            "metrics": metrics, "input": INPUT, "members": [n for t in members for n in names[t]],
            "member_targets": names, "graph": graph_cfg,
            "applicability": {"features": {**dist.describe(), "features": f"learned crystal features of {names['G'][0]} "
                                           "(before its output layer)"},
                              "dimensionality": "Larsen dimension of the CrystalNN-bonded network; 0 is flagged",
                              "above_training_max": "prediction above the largest training modulus",
                              "unseen_elements": "elements absent from every training crystal"}}
    write_card(folder, card)
    return card


class Ensemble:
    """A loaded ``models/cgcnn/ensemble`` folder."""

    def __init__(self, folder):
        folder = Path(folder)
        self.card = card = read_card(folder)
        self.members = {t: [load_checkpoint(folder / n)[:3] for n in names] for t, names in card["member_targets"].items()}
        self.table = load_atom_init(folder / "atom_init.json")
        g = card["graph"]
        self.graph_cfg = g
        self.gdf = GaussianDistance(dmin=g.get("dmin", 0.0), dmax=g["radius"], step=g["step"])
        self.feature_model = self.members["G"][0][0]
        f = card["applicability"]["features"]
        self.distance = NearestTrainDistance(np.load(folder / FEATURES)["features"], "euclidean",
                                             threshold=f["threshold"], quantile=f["quantile"])
        from pymatgen.core import Element

        self.seen = {Element(e).Z for e in card["training"]["elements"]}

    def graph(self, structure, name: str):
        return structure_graph(structure, self.table, self.graph_cfg["radius"], self.graph_cfg["max_num_nbr"], id=name)

    @torch.no_grad()
    def predict(self, graphs, extra: dict | None = None, max_atoms: int = 2048) -> pd.DataFrame:
        """Per graph: log10 mean, spread and GPa per target, the feature distance and its flag.
        ``extra``: {name: (model, mean, std)} run on the same batches (column ``log10<name>_extra``)."""
        from tqdm.auto import tqdm

        out = {}
        sizes = [g.n_atoms for g in graphs]
        preds = {t: np.zeros((len(graphs), len(ms))) for t, ms in self.members.items()}
        more = {name: np.zeros(len(graphs)) for name in (extra or {})}
        feats = np.zeros((len(graphs), self.feature_model.fc_out.in_features), np.float32)
        for m, _, _ in [m for ms in self.members.values() for m in ms] + list((extra or {}).values()):
            m.eval()
        batches = atom_batches(sizes, max_atoms)
        for idx in tqdm(batches, desc="cgcnn ensemble", mininterval=5, leave=False, disable=len(batches) < 20):
            inputs = collate([graphs[i] for i in idx], self.gdf).inputs()  # once for every model
            for t, ms in self.members.items():
                for j, (m, mean, std) in enumerate(ms):
                    preds[t][idx, j] = m(*inputs).numpy() * std + mean
            for name, (m, mean, std) in (extra or {}).items():
                more[name][idx] = m(*inputs).numpy() * std + mean
            feats[idx] = self.feature_model.crystal_features(*inputs).numpy()
        for t, p in preds.items():
            out[f"log10{t}"] = p.mean(axis=1)
            out[f"log10{t}_spread"] = p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.full(len(graphs), np.nan)
            out[f"{t}_GPa"] = 10 ** out[f"log10{t}"]
        d, far = self.distance.far(feats)
        out["feature_distance"] = d
        out["far_from_training"] = far
        out["n_models"] = len(self.members["G"])
        for name, v in more.items():
            out[f"log10{name}_extra"] = v
        return pd.DataFrame(out)

    def flags(self, pred: pd.DataFrame, zs: list, frags: list) -> list[str]:
        """The flag string per row (``zs``: atomic numbers per structure; ``frags``: bonded_fragments or None)."""
        out = []
        mx = self.card["training"]["max_log10"]
        for i in range(len(pred)):
            f = []
            if set(int(z) for z in zs[i]) - self.seen:
                f.append("unseen_elements")
            if frags[i] is not None and frags[i]["dimensionality"] == 0:
                f.append("molecular_or_isolated")
            if frags[i] is not None and frags[i]["isolated_atoms"]:
                f.append("isolated_atoms")
            if pred.far_from_training.iat[i]:
                f.append("far_from_training")
            for t in self.members:
                if pred[f"log10{t}"].iat[i] > mx[t]:
                    f.append(f"above_training_max_{t}")
            out.append(";".join(f))
        return out


def fragments_or_none(structure) -> dict | None:
    try:
        return bonded_fragments(structure)
    except Exception:  # CrystalNN can fail on exotic geometries: no flag rather than a crash
        return None


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, errors) for a structure file or a folder of them."""
    from pymatgen.core import Structure

    ens = Ensemble(folder)
    errors = RowErrors()
    good = []  # (file, row, structure, graph)
    for row, f in enumerate(structure_files(path), start=1):
        try:
            s = Structure.from_file(f)
        except Exception as exc:  # pymatgen raises many kinds on garbage input
            errors.add(f, row, "structure", f"unreadable structure file ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        if len(s) == 0:
            errors.add(f, row, "structure", "no sites")
            continue
        bad = partial_occupancy(s)
        if bad:
            errors.add(f, row, "structure", f"disordered: {len(bad)} site(s) with partial occupancy (first: site "
                       f"{bad[0]}, {s[bad[0]].species}); CGCNN needs one element per site")
            continue
        try:
            g = ens.graph(s, f.name)
        except DataError as exc:
            errors.add(f, row, "structure", exc.message)
            continue
        good.append((f, row, s, g))
    cols = ["file", "row", "formula", "nsites"]
    if not good:
        return pd.DataFrame(columns=cols), errors.frame()
    pred = ens.predict([g for *_, g in good])
    frags = [fragments_or_none(s) for _, _, s, _ in good]
    flags = ens.flags(pred, [g.z for *_, g in good], frags)
    head = pd.DataFrame({"file": [str(f) for f, *_ in good], "row": [r for _, r, *_ in good],
                         "formula": [s.composition.reduced_formula for _, _, s, _ in good],
                         "nsites": [len(s) for _, _, s, _ in good]})
    out = pd.concat([head, pred.drop(columns=["far_from_training"])], axis=1)
    out["dimensionality"] = [None if f is None else f["dimensionality"] for f in frags]
    out["isolated_atoms"] = [None if f is None else f["isolated_atoms"] for f in frags]
    out["flags"] = flags
    return out, errors.frame()


def card_metrics(paper_metrics: dict, subset: str) -> dict:
    """The test metrics of the ensemble's runs, copied from metrics/cgcnn/paper.json."""
    out = {}
    for t, by_subset in paper_metrics["results"].items():
        test = by_subset[subset]["test"]
        out[t] = json.loads(json.dumps(test))
    return out


def build_ensemble_folder(cfg: dict, data_dir, model_dir, metrics_file, out, root: Path | None = None) -> dict:
    """The ``cgcnn_model`` stage: ``out`` from the paper-protocol checkpoints of the screening
    subset, their training/test split (txie-93's random split) and metrics/cgcnn/paper.json."""
    from ...core.paths import raw_dir
    from ...features.graphstore import GraphStore
    from .data import atom_table, load_rows, subset_rows
    from .experiments import paper_split

    root = Path(root) if root else raw_dir()
    subset = cfg["screening"]["subset"]
    members = ensemble_members(model_dir, subset)
    rows = subset_rows(load_rows(data_dir), subset)
    labels, _ = paper_split(len(rows), cfg)
    store = GraphStore(Path(data_dir) / "graphs.npz", atom_table(root))
    graphs = {s: [store.get(k, id=str(r)) for k, r, lab in zip(rows.key, rows.row, labels) if lab == s]
              for s in ("train", "test")}
    train_y = {t: rows[TARGETS[t]["column"]].to_numpy(float)[labels == "train"] for t in members}
    metrics = card_metrics(json.loads(Path(metrics_file).read_text()), subset)
    out = Path(out)
    if out.is_dir():
        shutil.rmtree(out)
    return export_ensemble(out, members, root / ATOM_INIT, cfg["graph"], graphs["train"], graphs["test"], train_y,
                           metrics, cfg["profile"], subset)


def main(argv: list[str] | None = None) -> None:
    """``python -m matrepro.papers.cgcnn.predict``: models/cgcnn/ensemble (the cgcnn_model stage)."""
    import argparse
    import logging

    from ...core.config import paper_config

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", default="data/processed/cgcnn")
    ap.add_argument("--models", default="models/cgcnn/paper")
    ap.add_argument("--metrics", default="metrics/cgcnn/paper.json")
    ap.add_argument("--out", default="models/cgcnn/ensemble")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    card = build_ensemble_folder(paper_config("cgcnn"), a.data, a.models, a.metrics, a.out)
    f = card["applicability"]["features"]
    print(f"{a.out}: {len(card['members'])} checkpoints, {card['training']['rows']['train']} training crystals, "
          f"{card['training']['n_elements']} elements; feature-distance threshold {f['threshold']:.3g} "
          f"(q{f['quantile']} of the test split)")


if __name__ == "__main__":
    main()
