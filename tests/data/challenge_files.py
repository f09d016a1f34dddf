"""Small files in exactly the CaloChallenge 2022 layout, for the tests of reading, training on and writing them.

``ds1_photon_xml``: dataset 1 photons' binning (24 layers, 5 of them with voxels: 8, 160, 190, 5, 5 = 368), the
layers' r_edges and n_bin_alpha as in the challenge's ``binning_dataset_1_photons.xml``. ``ds2_xml``: dataset 2's
(45 layers of 16 angular x 9 radial bins = 6480 voxels). ``write_challenge_file``: showers of that binning,
``incident_energies`` (n, 1) and ``showers`` (n, voxels) in MeV as float32, written with h5py directly (not by
hepgen), like the challenge's own files.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

#: dataset 1 photons: (layer id, r_edges, n_bin_alpha) of the layers with voxels; the other 19 have r_edges="0"
DS1_PHOTON_LAYERS = {
    0: ("0,5,10,30,50,100,200,400,600", 1),
    1: ("0,2,4,6,8,10,12,15,20,30,40,50,70,90,120,150,200", 10),
    2: ("0,2,5,10,15,20,25,30,40,50,60,80,100,130,160,200,250,300,350,400", 10),
    3: ("0,50,100,200,400,600", 1),
    12: ("0,100,200,400,1000,2000", 1),
}
DS1_PHOTON_SIZES = {0: 8, 1: 160, 2: 190, 3: 5, 12: 5}
DS2_EDGES = "0,4.65,9.3,13.95,18.6,23.25,27.9,32.55,37.2,41.85"


def ds1_photon_xml(path: Path) -> Path:
    rows = []
    for layer in range(24):
        edges, alpha = DS1_PHOTON_LAYERS.get(layer, ("0", 1))
        rows.append(f'      <Layer id="{layer}" r_edges="{edges}" n_bin_alpha="{alpha}" />')
    path.write_text('<Bins>\n   <Bin pid="22" etaMin="0" etaMax="130" name="photon">\n' + "\n".join(rows)
                    + "\n   </Bin>\n</Bins>\n")
    return path


def ds2_xml(path: Path) -> Path:
    rows = [f'      <Layer id="{layer}" r_edges="{DS2_EDGES}" n_bin_alpha="16" />' for layer in range(45)]
    path.write_text('<Bins>\n   <Bin pid="11" name="electron">\n' + "\n".join(rows) + "\n   </Bin>\n</Bins>\n")
    return path


def layer_specs(xml: Path) -> list[tuple[list[float], int]]:
    """(r_edges, n_alpha) of every layer, read with the standard library (independently of hepgen)."""
    import xml.etree.ElementTree as ET

    out = []
    for layer in ET.parse(xml).getroot()[0]:
        out.append(([float(v) for v in layer.attrib["r_edges"].split(",")], int(layer.attrib["n_bin_alpha"])))
    return out


def challenge_showers(xml: Path, n: int, seed: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(incident energies (n, 1) MeV, showers (n, voxels) MeV): per layer a share of E_inc spread over the
    (α, r) bins with an exponential radial profile and exponential fluctuations; cells below 30 % of the
    profile are empty, as in a sparse real shower. ``scale`` multiplies every voxel (a miscalibrated sample)."""
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(np.log(2e3), np.log(1e5), n))
    parts = []
    for edges, n_alpha in layer_specs(xml):
        if len(edges) < 2:
            continue
        e = np.asarray(edges)
        profile = np.exp(-0.5 * (e[1:] + e[:-1]) / 40.0)[None, :] * np.ones((n_alpha, 1))
        cells = rng.exponential(1.0, (n, n_alpha, len(e) - 1)) * profile
        cells = np.where(cells > 0.3 * profile, cells, 0.0)
        total = cells.sum((1, 2), keepdims=True)
        cells = np.where(total > 0, cells / np.where(total > 0, total, 1.0), 0.0)
        share = 0.15 * rng.uniform(0.6, 1.4, n)
        parts.append((cells * (share * energy)[:, None, None]).reshape(n, -1))
    return energy[:, None], scale * np.concatenate(parts, axis=1)


def write_challenge_file(path: Path, xml: Path, n: int, seed: int, scale: float = 1.0) -> Path:
    energy, showers = challenge_showers(xml, n, seed, scale)
    with h5py.File(path, "w") as f:
        f["incident_energies"] = energy.astype(np.float32)
        f["showers"] = showers.astype(np.float32)
    return path


def xml_handler_eta_phi(xml: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The challenge's XMLHandler.SetEtaAndPhiFromPolar, transcribed loop for loop: per layer the η and φ of its
    voxels in file order (angular bins outer, radial bins inner); empty arrays for a layer without voxels."""
    out = []
    for edges, n_alpha in layer_specs(xml):
        r_mid = [edges[i] + (edges[i + 1] - edges[i]) / 2 for i in range(len(edges) - 1)]
        a = np.linspace(-math.pi, math.pi, n_alpha + 1)
        a_mid = [a[i] + (a[i + 1] - a[i]) / 2 for i in range(n_alpha)]
        r_list, a_list = [], []
        for j0 in range(n_alpha if r_mid else 0):
            for i0 in range(len(r_mid)):
                r_list.append(r_mid[i0])
                a_list.append(a_mid[j0])
        out.append((np.array(r_list) * np.cos(a_list), np.array(r_list) * np.sin(a_list)))
    return out


def evaluate_high_level_inputs(xml: Path, energy_mev: np.ndarray, showers: np.ndarray) -> np.ndarray:
    """The challenge's evaluate.py prepare_high_data_for_classifier (without its label column) on
    HighLevelFeatures.CalculateFeatures, transcribed: log10 E_inc, log10(E_layer + 1e-8) of every layer with
    voxels, then EC_eta / 100, EC_phi / 100, width_eta / 100, width_phi / 100 of the layers binned in angle."""
    specs = layer_specs(xml)
    eta_phi = xml_handler_eta_phi(xml)
    edges = np.cumsum([0] + [(len(e) - 1) * a for e, a in specs])
    relevant = [k for k, (e, _) in enumerate(specs) if len(e) > 1]
    binned = [k for k, (_, a) in enumerate(specs) if a > 1]
    e_layer = [showers[:, edges[k]:edges[k + 1]].sum(-1) for k in relevant]
    blocks = {"ec_eta": [], "ec_phi": [], "w_eta": [], "w_phi": []}
    for k in binned:
        data = showers[:, edges[k]:edges[k + 1]]
        eta, phi = eta_phi[k]
        norm = data.sum(-1) + 1e-16
        ec_eta, ec_phi = (eta * data).sum(-1) / norm, (phi * data).sum(-1) / norm
        blocks["ec_eta"].append(ec_eta)
        blocks["ec_phi"].append(ec_phi)
        blocks["w_eta"].append(np.sqrt(((eta * eta * data).sum(-1) / norm - ec_eta**2).clip(min=0.0)))
        blocks["w_phi"].append(np.sqrt(((phi * phi * data).sum(-1) / norm - ec_phi**2).clip(min=0.0)))
    cols = [np.log10(energy_mev.reshape(-1))] + [np.log10(e + 1e-8) for e in e_layer]
    for name in ("ec_eta", "ec_phi", "w_eta", "w_phi"):
        cols += [v / 1e2 for v in blocks[name]]
    return np.column_stack(cols)
