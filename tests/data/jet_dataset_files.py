"""Small files in the published layouts of the field's jet datasets (for the importer tests)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd


def massless(pt, eta, phi):
    """(n, 4) = (px, py, pz, E) of massless particles."""
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=-1)


def top_tagging_jets(n=3, seed=0, max_constituents=200):
    """(n, 200, 4) constituents (E, px, py, pz), zero-padded and pT-ordered, and labels 0/1 alternating."""
    rng = np.random.default_rng(seed)
    data = np.zeros((n, max_constituents, 4))
    for j in range(n):
        m = int(rng.integers(4, 45))
        pt = np.sort(rng.exponential(30, m))[::-1] + 1.0
        eta, phi = rng.normal(0.3, 0.15, m), rng.normal(1.0, 0.15, m) + (np.pi - 1.1 if j == 1 else 0.0)
        data[j, :m] = massless(pt, eta, phi)[:, [3, 0, 1, 2]]
    return data, np.arange(n) % 2


def write_top_tagging(path, data, labels, fmt="fixed", drop=()):
    """The Top Quark Tagging Reference Dataset's layout: pandas, key 'table', E_i PX_i PY_i PZ_i interleaved."""
    columns = {}
    for i in range(data.shape[1]):
        for c, name in enumerate(("E", "PX", "PY", "PZ")):
            columns[f"{name}_{i}"] = data[:, i, c].astype(np.float32)
    for name in ("truthE", "truthPX", "truthPY", "truthPZ"):
        columns[name] = np.zeros(len(data), np.float32)
    columns["ttv"] = np.zeros(len(data), np.int64)
    columns["is_signal_new"] = np.asarray(labels, dtype=np.int64)
    frame = pd.DataFrame(columns).drop(columns=list(drop))
    frame.to_hdf(path, key="table", format=fmt)


def lhco_events(n=4, seed=1):
    """(n, 2101): (pT, eta, phi) of up to 700 hadrons, two back-to-back sprays per event, then the label."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 2101))
    for j in range(n):
        m = 80
        pt = rng.exponential(25, m) + 0.5
        eta = np.concatenate([rng.normal(0.4, 0.25, m // 2), rng.normal(-0.7, 0.25, m // 2)])
        phi = np.concatenate([rng.normal(0.2, 0.25, m // 2), rng.normal(3.0, 0.25, m // 2)])
        phi = (phi + np.pi) % (2 * np.pi) - np.pi
        out[j, : 3 * m] = np.stack([pt, eta, phi], axis=-1).ravel()
        out[j, 2100] = j % 2
    return out


def write_lhco(path, events, fmt="fixed"):
    """The LHC Olympics 2020 layout: pandas, key 'df', integer column names 0..2100."""
    pd.DataFrame(events).to_hdf(path, key="df", format=fmt)


def jetnet_jets(n=3, seed=2, particles=30):
    """JetNet arrays: particle_features (n, P, 4) = (eta_rel, phi_rel, pt_rel, mask), jet_features (n, 4), and the
    true jet 4-momenta (n, 4) they were built from (px, py, pz, E)."""
    rng = np.random.default_rng(seed)
    pf, jets, truth = np.zeros((n, particles, 4)), np.zeros((n, 4)), np.zeros((n, 4))
    for j in range(n):
        m = int(rng.integers(5, particles))
        pt = np.sort(rng.exponential(60, m))[::-1] + 1.0
        eta, phi = rng.normal(-0.5, 0.12, m), rng.normal(0.0, 0.12, m)
        p4 = massless(pt, eta, phi).sum(axis=0)
        jet_pt, jet_phi = np.hypot(p4[0], p4[1]), np.arctan2(p4[1], p4[0])
        jet_eta = np.arcsinh(p4[2] / jet_pt)
        mass = np.sqrt(p4[3] ** 2 - p4[:3] @ p4[:3])
        pf[j, :m] = np.stack([eta - jet_eta, phi - jet_phi, pt / jet_pt, np.ones(m)], axis=-1)
        jets[j] = [jet_pt, jet_eta, mass, m]
        truth[j] = p4
    return pf, jets, truth


def write_jetnet(path, pf, jets):
    with h5py.File(path, "w") as handle:
        handle["particle_features"] = pf.astype(np.float32)
        handle["jet_features"] = jets.astype(np.float32)
