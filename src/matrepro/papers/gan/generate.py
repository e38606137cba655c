"""gan generator checks (Hu, Song, Jiang, Li, Symmetry 12, 1889, 2020): the abstract says the
generator produces hypothetical materials with the distribution of known ones. The paper's checks are
unknown; these are MatGAN's kind of checks, on decoded compositions:

* decodable share: generated tables that decode to a composition (``atom_table.decode``);
* validity: charge neutrality by pymatgen's oxidation-state guesses (below);
* uniqueness and novelty by composition key (``atom_table.composition_key``: Fe2O3 = Fe4O6);
* element frequency and element-count distribution, generated vs training compositions.

Validity. A formula is valid when ``Composition(f).oxi_state_guesses(max_sites=-50)`` is non-empty:
some assignment of each element's ICSD (else common) oxidation states, per site, sums to zero on the
reduced formula (at most 50 atoms, else invalid). Pure elements pass (pymatgen assigns 0). pymatgen
enumerates the product of every element's possible oxidation sums, which explodes with the element
count (a 6-metal formula ~2 s, 7 metals ~20 s, 8 ~5 min). When that product (or the per-element
combination count) exceeds ``PYMATGEN_PRODUCT_CAP``, the same question is answered exactly by a
set-sum (the reachable total charges, element by element, from the same oxidation-state lists and
the same reduced formula);
``validity_details`` names the method per formula, and the test suite checks that both agree.
Every distinct formula is checked once.
"""
from __future__ import annotations

import warnings
from collections import Counter
from math import comb

import numpy as np
import pandas as pd

from ...core.adversarial import sample
from ...features.atom_table import ELEMENTS, composition_keys, decode_many
from .store import load_gan_formulas
from .training import load_gan

MAX_SITES = 50  # oxi_state_guesses(max_sites=-50): reduced formulas of more atoms are not checked (invalid)
PYMATGEN_PRODUCT_CAP = 20_000  # above: the exact set-sum instead of pymatgen's enumeration
MAX_COUNT_BIN = 8  # element_count_distribution: 1, 2, ..., 7, "8+"


def generated_formulas(generator, n: int, noise_dim: int, seed: int, threshold: float = 0.5,
                       device=None) -> list[str | None]:
    """``n`` generated tables (``core.adversarial.sample``) decoded at ``threshold``; None where a
    table decodes to no composition."""
    return list(decode_many(sample(generator, n, noise_dim, seed, device=device), threshold=threshold))


def _oxi_lists(comp) -> dict[str, tuple[int, ...]]:
    from pymatgen.core import Element

    return {el: tuple(Element(el).icsd_oxidation_states or Element(el).common_oxidation_states)
            for el in comp.get_el_amt_dict()}


def _sums(states: tuple[int, ...], n: int) -> set[int]:
    """Every total oxidation of n sites of one element (states with repetition), as pymatgen forms it."""
    reach = {0}
    for _ in range(n):
        reach = {r + s for r in reach for s in states}
    return reach


def _neutral_exists(comp) -> bool:
    """Exact: is 0 among the reachable total charges (the set-sum of every element's sums)? A pure
    element is neutral (pymatgen's special case: oxidation state 0)."""
    amounts = comp.get_el_amt_dict()
    if len(amounts) == 1:
        return True
    total = {0}
    for el, states in _oxi_lists(comp).items():
        total = {t + s for t in total for s in _sums(states, int(amounts[el]))}
        if not total:
            return False
    return 0 in total


def _check_one(formula) -> tuple[bool, str, str]:
    """(valid, method, reason) for one formula."""
    from pymatgen.core import Composition, Element

    if formula is None or (isinstance(formula, float) and np.isnan(formula)) or not str(formula).strip():
        return False, "", "empty formula"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(str(formula).strip())
            if any(not isinstance(el, Element) for el in comp.elements):
                return False, "", "unknown element"
            if comp.num_atoms <= 0:
                return False, "", "no atoms"
            red = comp.reduced_composition
            if red.num_atoms > MAX_SITES:
                return False, "", f"reduced formula has {red.num_atoms:g} atoms (> {MAX_SITES}): not checked"
            if not all(float(a).is_integer() for a in red.values()):
                return False, "", "non-integer amounts: charge balance needs integer counts"
            amounts = red.get_el_amt_dict()
            product, combos = 1, 0  # pymatgen's two loops: per-element combinations, then their product
            for el, states in _oxi_lists(red).items():
                n_el = int(amounts[el])
                product *= max(len(_sums(states, n_el)), 1)
                combos += comb(len(states) + n_el - 1, n_el) if states else 0
            if product <= PYMATGEN_PRODUCT_CAP and combos <= PYMATGEN_PRODUCT_CAP:
                ok = bool(comp.oxi_state_guesses(max_sites=-MAX_SITES))
                method = "pymatgen oxi_state_guesses"
            else:
                ok, method = _neutral_exists(red), "exact set-sum (pymatgen's enumeration too large)"
    except Exception as exc:  # pymatgen raises ValueError / KeyError / CompositionError on odd input
        return False, "", f"pymatgen cannot handle it: {type(exc).__name__}: {exc}"
    return ok, method, "" if ok else "no charge-neutral oxidation-state assignment"


def validity_details(formulas) -> pd.DataFrame:
    """formula, valid, method, reason per input formula (each distinct formula checked once)."""
    formulas = list(formulas)
    cache: dict = {}
    rows = []
    for f in formulas:
        key = f if isinstance(f, str) else None
        if key not in cache:
            cache[key] = _check_one(key)
        ok, method, reason = cache[key]
        rows.append({"formula": f, "valid": ok, "method": method, "reason": reason})
    return pd.DataFrame(rows, columns=["formula", "valid", "method", "reason"])


def validity(formulas) -> pd.Series:
    """Charge neutrality per formula (bool, input order): see the module doc. Empty/None, unparseable
    and non-integer formulas are invalid; ``validity_details`` gives the reason."""
    return validity_details(formulas)["valid"].astype(bool)


def generator_report(generated: list, training: list[str], n_examples: int = 20) -> dict:
    """Shares of the generated compositions (plain python types, JSON-ready):

    * ``decodable_share`` = decodable / generated;
    * ``valid_share`` = valid / decodable (with repeats);
    * ``unique_share`` = distinct compositions / decodable;
    * ``novel_share`` = distinct compositions not among the training compositions / distinct;
    * ``novel_examples``: up to ``n_examples`` valid novel formulas, one per composition, in the
      order first generated;
    * ``n_valid_novel_compounds`` and ``novel_compound_examples``: the same, of two or more elements
      (a pure element is "novel" whenever the training set holds no elemental entry, as OQMD's
      formation-enthalpy files do not, but it is no hypothetical material)."""
    decodable = [f for f in generated if isinstance(f, str) and f.strip()]
    keys = composition_keys(decodable, file="generated formulas")
    train_keys = set(composition_keys(training, file="training compositions"))
    valid = validity(decodable).to_numpy() if decodable else np.zeros(0, bool)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    novel = [k for k in first if k not in train_keys]
    valid_novel = [k for k in novel if valid[first[k]]]
    compounds = [k for k in valid_novel if "," in k]  # composition keys join elements with ","
    examples = [decodable[first[k]] for k in valid_novel][:n_examples]
    n, nd, nu = len(generated), len(decodable), len(first)
    share = lambda a, b: float(a / b) if b else float("nan")  # noqa: E731
    return {"n_generated": n, "n_decodable": nd, "decodable_share": share(nd, n),
            "n_valid": int(valid.sum()), "valid_share": share(int(valid.sum()), nd),
            "n_unique": nu, "unique_share": share(nu, nd),
            "n_novel": len(novel), "novel_share": share(len(novel), nu),
            "n_valid_novel": len(valid_novel), "n_valid_novel_compounds": len(compounds),
            "n_training_compositions": len(train_keys), "novel_examples": examples,
            "novel_compound_examples": [decodable[first[k]] for k in compounds][:n_examples]}


def _element_sets(formulas) -> list[frozenset[str]]:
    from pymatgen.core import Composition

    cache: dict[str, frozenset[str]] = {}
    out = []
    for f in formulas:
        if not isinstance(f, str) or not f.strip():
            continue
        if f not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[f] = frozenset(el.symbol for el, amt in Composition(f).items() if amt > 0)
        out.append(cache[f])
    return out


def element_frequency(formulas) -> pd.Series:
    """Share of the (non-empty) formulas that contain each of the 85 table elements, in table order.
    Elements outside the table are not listed (their formulas still count in the denominator)."""
    sets = _element_sets(formulas)
    c = Counter(el for s in sets for el in s)
    n = len(sets)
    return pd.Series([c.get(el, 0) / n if n else np.nan for el in ELEMENTS], index=list(ELEMENTS),
                     name="share", dtype=float)


def element_count_distribution(formulas) -> pd.Series:
    """Share of the (non-empty) formulas with 1, 2, ..., 7, 8+ elements (index "1" ... "8+"); sums
    to 1 (NaN for no formulas)."""
    sets = _element_sets(formulas)
    labels = [str(k) for k in range(1, MAX_COUNT_BIN)] + [f"{MAX_COUNT_BIN}+"]
    c = Counter(min(len(s), MAX_COUNT_BIN) for s in sets)
    n = len(sets)
    return pd.Series([c.get(k, 0) / n if n else np.nan for k in range(1, MAX_COUNT_BIN + 1)], index=labels,
                     name="share", dtype=float)


def generator_checks(cfg: dict, data_dir, model_dir) -> dict:
    """The gan_generate stage: ``cfg["generator_checks"]["n_samples"]`` generated compositions
    (noise seed ``gan_seed + 1``) checked against the GAN's own training compositions (the encoded
    ones of the data stage). Returns the report, the two distributions and the decoded formulas."""
    gen, _, _ = load_gan(model_dir)
    gc = cfg["generator_checks"]
    formulas = generated_formulas(gen, int(gc["n_samples"]), int(cfg["generator"].get("noise_dim", 128)),
                                  seed=int(cfg["gan_seed"]) + 1, threshold=float(gc.get("threshold", 0.5)))
    train = load_gan_formulas(data_dir, "train")
    made = [f for f in formulas if f]
    freq = pd.DataFrame({"generated": element_frequency(made), "training": element_frequency(train)})
    counts = pd.DataFrame({"generated": element_count_distribution(made),
                           "training": element_count_distribution(train)})
    return {"report": generator_report(formulas, train), "element_frequency": freq.fillna(0.0),
            "element_counts": counts.fillna(0.0), "formulas": formulas}
