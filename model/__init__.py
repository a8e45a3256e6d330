"""Unsup3D (Wu et al., CVPR 2020) re-implemented for the reproducibility study.

One module per concern: config, compat, networks, geometry, renderer, photogeo
(the photo-geometric autoencoder), losses, data, metrics, samples, train.
Must import on Python 3.6 / PyTorch 1.2 (the old CUDA images): see compat.py.
"""
