"""Pure functions over arrays, one module per measurement of the paper (no files, no plots):

    pca.py         trajectory PCA, r90 and relatives, random-walk nulls, principal angles (eq 1–2)
    commutator.py  SGD commutators and their second-order limit (eq 3–5)
    execution.py   the execution subspace, rho, three random baselines (eq 6–7, 10)
    attention.py   top-k attention mass and truncation (§4.2; entropy eq 9 is recorded in training)
    sae.py         the sparse autoencoder and latent-factor correlations (eq 8)
"""
