"""Operator learning: data from the reference solver of a spec (`dataset`, numpy/scipy/h5py
only) and Fourier neural operators trained on it (`train`, torch). Imported lazily through
`pinnkit.dataset` / `pinnkit.train_operator`, so dataset workers never import torch."""
