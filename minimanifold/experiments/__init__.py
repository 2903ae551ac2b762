"""One module per paper section. Each owns its cached per-run measurement, its ledger rows
(keyed by claim number) with their verdict rules, and its figures, and ends with its
contract, ``EXPERIMENT = contract.Experiment(...)``: its name and section, its rules by
claim, ``report``, and where it has them its variant runs, its per-run measurements with
their cost weight, and the training its measurement does (``contract.py``).

Adding an experiment is adding a module and one line in ``EXPERIMENTS``.
"""
from . import (architecture, bubbling, collapse, commutators, compositional, functional_dimension,
               factorial, m_scaling, multiplication, optimizer, restricted_training, sae_probing,
               training_curves)

EXPERIMENTS = (
    training_curves.EXPERIMENT,  # §3.2  the runs: training curves
    collapse.EXPERIMENT,        # §4.1   Fig 1, claims 1–5
    m_scaling.EXPERIMENT,       # §4.1   r90 against M = 1..6, claim 19
    bubbling.EXPERIMENT,        # §4.2   Fig 2 and top-k, claims 6–7
    commutators.EXPERIMENT,     # §4.3   Figs 3–5, claims 8–12, 27
    sae_probing.EXPERIMENT,     # §4.4   Fig 6, claims 13–14
    architecture.EXPERIMENT,    # §4.5   curriculum and MLP figures, claims 15–17
    compositional.EXPERIMENT,   # §4.5   held-out value combinations and a held-out m, claim 20
    multiplication.EXPERIMENT,  # §4.6   multiplication figure, claim 18
    optimizer.EXPERIMENT,       # control: SGD against AdamW (with and without weight decay), a figure (claim 21 retired)
    factorial.EXPERIMENT,       # control: optimizer x schedule x task (no task: random labels), claims 24–26
    functional_dimension.EXPERIMENT,  # control: does the top-k subspace carry the function? claim 22
    restricted_training.EXPERIMENT,   # control: does training inside it (vs a random one) learn? claim 23
)

# The values the authors' own figures show (their released code: AdamW, T=16, 5 layers),
# placed beside ours in the ledger of a preset with ``compare_authors`` (the authors
# preset); claim number -> text.
AUTHORS_FIGURES = {
    1: "r90 4.1–6.0 (W_Q/W_K), 2.5–3.8 (W_V/W_O)",
    2: "W_V/W_O 2.5–3.8 below W_Q/W_K 4.1–6.0",
    6: "entropy minimum 0.40, then rising to 0.9–1.6",
    10: "9.7× early, 2.1× late (peak 15.6×)",
    14: "ablation 0.52→0.49, 0.945→0.938, 1.00→1.00",
}
