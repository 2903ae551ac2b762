"""Task generator (paper §3.1): properties checked by Hypothesis, validation errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minimanifold import Schedule, TaskConfig, make_batch
from minimanifold.trajectories.task import probe_set
from minimanifold.trajectories.schedule import train_batch


@st.composite
def task_and_ms(draw):
    T = draw(st.integers(4, 40))
    C = draw(st.integers(2, 12))
    max_m = (T - 1) // 2
    n_markers = draw(st.integers(1, min(max_m, 8)))
    d_vocab = C + n_markers + 1 + draw(st.integers(1, 10))
    op = draw(st.sampled_from(["add", "mul"]))
    task = TaskConfig(T=T, C=C, n_markers=n_markers, d_vocab=d_vocab, op=op)
    ms = draw(st.lists(st.integers(1, n_markers), min_size=1, max_size=4))
    return task, ms, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 40))


def decode(task, tokens):
    """Read (m, values in marker order) back from one sequence, independently of the
    generator: every marker token C+i must be followed by a value."""
    found = {}
    for p, tok in enumerate(tokens):
        if task.C <= tok < task.C + task.n_markers:
            found[int(tok) - task.C] = (p, int(tokens[p + 1]))
    m = len(found)
    assert sorted(found) == list(range(m)), "markers must be C, C+1, ..., C+m-1"
    return [found[i][0] for i in range(m)], [found[i][1] for i in range(m)]


@settings(deadline=None, max_examples=60)
@given(task_and_ms())
def test_batch_properties(args):
    task, ms, seed, b = args
    batch = make_batch(np.random.default_rng(seed), task, ms, b)
    assert batch.tokens.shape == (b, task.T)
    assert set(np.unique(batch.m)) <= set(ms)
    for row in range(b):
        tok = batch.tokens[row]
        assert tok[-1] == task.query_token
        assert not np.any(tok[:-1] == task.query_token)
        pos, vals = decode(task, tok)
        m = batch.m[row]
        assert len(pos) == m
        assert pos == sorted(pos), "the i-th marked position gets marker C+i"
        assert all(b2 - a2 >= 2 for a2, b2 in zip(pos, pos[1:])), "markers non-adjacent"
        assert all(0 <= p <= task.T - 3 for p in pos), "marker/value pairs inside 0..T-2"
        assert all(0 <= v < task.C for v in vals)
        np.testing.assert_array_equal(batch.positions[row, :m], pos)
        np.testing.assert_array_equal(batch.values[row, :m], vals)
        expected = sum(vals) % task.C if task.op == "add" else int(np.prod(vals)) % task.C
        assert batch.targets[row] == expected
        used = set(pos) | {p + 1 for p in pos} | {task.T - 1}
        rest = np.array([tok[p] for p in range(task.T) if p not in used], dtype=np.int64)
        assert np.all((rest >= task.first_distractor) & (rest < task.d_vocab)), \
            "a distractor is a value, marker or query token"


def test_m_drawn_per_example_and_positions_vary():
    task = TaskConfig()
    batch = make_batch(np.random.default_rng(0), task, [1, 2, 3, 4], 512)
    assert set(np.unique(batch.m)) == {1, 2, 3, 4}
    counts = np.bincount(batch.m)[1:]
    assert counts.min() > 512 / 4 * 0.7
    assert len({tuple(p) for p in batch.positions}) > 400      # not shared across the batch


def test_every_position_can_be_marked():
    task = TaskConfig(T=12, n_markers=3, d_vocab=20)
    batch = make_batch(np.random.default_rng(1), task, [1, 3], 4000)
    seen = set(batch.positions[batch.positions >= 0].tolist())
    assert seen == set(range(0, task.T - 2))


def test_deterministic_from_seed_and_step():
    task, sched = TaskConfig(), Schedule.parse("mixed:1,2,3")
    a, b = train_batch(task, sched, 64, 5, 17), train_batch(task, sched, 64, 5, 17)
    c = train_batch(task, sched, 64, 5, 18)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)
    probe = probe_set(task, [1, 2], 32, 5)
    assert set(probe) == {1, 2} and probe[2].tokens.shape == (32, task.T)
    assert np.all(probe[2].m == 2)


@pytest.mark.parametrize("kwargs, field", [
    (dict(C=1), "C"),
    (dict(C=8, n_markers=6, d_vocab=15), "d_vocab"),
    (dict(op="sub"), "op"),
    (dict(T=10, n_markers=5), "n_markers"),
    (dict(T=3), "T"),
    (dict(labels="shuffled"), "labels"),
])
def test_task_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TaskConfig(**kwargs)


@pytest.mark.parametrize("ms, field", [([0], "m"), ([7], "n_markers"), ([], "m_choices")])
def test_m_validation(ms, field):
    with pytest.raises(ValueError, match=field):
        make_batch(np.random.default_rng(0), TaskConfig(), ms, 4)


def test_m_too_large_for_T():
    task = TaskConfig(T=9, n_markers=4, d_vocab=20)          # 4 pairs fit in 8 positions
    make_batch(np.random.default_rng(0), task, [4], 8)
    with pytest.raises(ValueError, match=r"m=5 is too large"):
        make_batch(np.random.default_rng(0), TaskConfig(T=9, n_markers=4, d_vocab=20), [5], 8)


def test_schedules():
    mixed = Schedule.parse("mixed:1,2,3,4")
    assert mixed.m_set(0) == mixed.m_set(10**6) == (1, 2, 3, 4)
    cur = Schedule.parse("curriculum:1x100,2x50,3+4x25")
    assert cur.boundaries() == [0, 100, 150]
    assert [cur.m_set(s) for s in (0, 99, 100, 149, 150, 174, 175, 10**6)] == \
        [(1,), (1,), (2,), (2,), (3, 4), (3, 4), (3, 4), (3, 4)]
    assert Schedule.parse(cur.spec()) == cur and Schedule.parse(mixed.spec()) == mixed
    assert cur.all_m() == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="schedule"):
        Schedule.parse("random:1,2")
    with pytest.raises(ValueError, match="malformed"):
        Schedule.parse("curriculum:1x")
    with pytest.raises(ValueError, match="m=9"):
        Schedule.parse("mixed:1,9").validate(TaskConfig())


def test_curriculum_boundaries_in_training_batches():
    from minimanifold.experiments.architecture import curriculum_schedule
    task = TaskConfig()
    sched = Schedule.parse(curriculum_schedule("mixed:1,2,3", 90))
    assert sched.spec() == "curriculum:1x30,2x30,3x30" and sched.boundaries() == [0, 30, 60]
    for step, m in [(0, 1), (29, 1), (30, 2), (59, 2), (60, 3), (89, 3), (500, 3)]:
        assert set(train_batch(task, sched, 64, 0, step).m) == {m}, step
    assert curriculum_schedule("mixed:1,2", 1001) == "curriculum:1x500,2x501"


def test_perbatch_draws_one_m_per_batch_uniformly():
    """The authors' scheme: every example of a step's batch has the same m, and over many
    steps each m of the set comes up about equally often (mixed varies m within a batch)."""
    task = TaskConfig(T=16)
    sched = Schedule.parse("perbatch:1,2,3,4")
    assert sched.spec() == "perbatch:1,2,3,4" and Schedule.parse(sched.spec()) == sched
    assert sched.m_set(7) == (1, 2, 3, 4) and sched.all_m() == (1, 2, 3, 4)
    counts = {m: 0 for m in (1, 2, 3, 4)}
    for step in range(400):
        ms = set(train_batch(task, sched, 32, 0, step).m)
        assert len(ms) == 1, step
        counts[ms.pop()] += 1
    assert all(70 <= c <= 130 for c in counts.values()), counts      # 100 +- 3 sd
    assert len(set(train_batch(task, Schedule.parse("mixed:1,2,3,4"), 32, 0, 0).m)) > 1
    np.testing.assert_array_equal(train_batch(task, sched, 32, 3, 9).tokens, train_batch(task, sched, 32, 3, 9).tokens)


# ---- the no-task control (issue 24): the task's inputs, labels independent of them ----

def _mutual_information(x, y) -> float:
    """Plug-in mutual information (nats) of two integer arrays."""
    joint = np.zeros((x.max() + 1, y.max() + 1))
    np.add.at(joint, (x, y), 1)
    joint /= joint.sum()
    px, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (px @ py)[nz])).sum())


def test_no_task_batches_keep_the_inputs_and_draw_labels_independently_of_them():
    task = TaskConfig()
    none = TaskConfig(labels="random")
    schedule = Schedule.parse("mixed:1,2,3,4")
    for step in (0, 7, 1234):
        real, fake = (train_batch(t, schedule, 64, seed=3, step=step) for t in (task, none))
        for name in ("tokens", "m", "positions", "values"):               # the same inputs, bit for bit
            np.testing.assert_array_equal(getattr(real, name), getattr(fake, name), err_msg=name)
        assert fake.targets.min() >= 0 and fake.targets.max() < task.C
    big_real, big_fake = (make_batch(np.random.default_rng(5), t, [1, 2, 3, 4], 200_000) for t in (task, none))
    assert _mutual_information(big_real.targets, big_real.targets) > 2.0            # ln 8 = 2.08: the answer
    assert _mutual_information(big_real.targets, big_fake.targets) < 1e-3           # ≈ 0 (plug-in bias 49/2N)
    assert np.bincount(big_fake.targets, minlength=8).min() > 200_000 / 8 * 0.97    # uniform over 0..C-1
    a, b = (train_batch(none, schedule, 4096, seed=3, step=s).targets for s in (0, 1))
    assert _mutual_information(a, b) < 0.02 and not np.array_equal(a, b)            # fresh every batch


def test_a_no_task_run_is_probed_on_the_task():
    """Its probe set is the task's (true labels), so its accuracy says it learned no rule."""
    real, fake = (probe_set(TaskConfig(labels=lab), [1, 2], 32, seed=0) for lab in ("task", "random"))
    for m in (1, 2):
        for name in ("tokens", "targets"):
            np.testing.assert_array_equal(getattr(real[m], name), getattr(fake[m], name))


def test_the_no_task_option_leaves_every_cached_run_key_unchanged():
    from minimanifold.trajectories.presets import PAPER, QUICK
    from minimanifold.trajectories.sweep import run_key
    assert run_key(QUICK.specs()[0]) == "add-3c167bf8b9" and run_key(PAPER.specs()[0]) == "add-34c436cc36"
    import dataclasses
    spec = QUICK.specs()[0]
    other = dataclasses.replace(spec, task=dataclasses.replace(spec.task, labels="random"))
    assert run_key(other) != run_key(spec)
