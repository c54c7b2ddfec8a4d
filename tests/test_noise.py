"""Noise matrices and the sampler reproduce the public code (ACT_SPEC.md "Noisy datasets")."""
import numpy as np
import pytest

from act.errors import ActError
from act.method.noise import corrupt, noise_report, transition_matrix


def public_matrix(noise_type, closeset_ratio, openset_ratio, nb_classes):
    """A re-statement of the public code's generate_noise_matrix (its loops, its order of ops)."""
    k = int(nb_classes * (1 - openset_ratio))
    if noise_type == "symmetric":
        p = np.ones((nb_classes, nb_classes))
        p = (closeset_ratio / (k - 1)) * p
        for i in range(k):
            p[i, i] = 1.0 - closeset_ratio
    else:
        p = np.eye(nb_classes)
        p[0, 0], p[0, 1] = 1.0 - closeset_ratio, closeset_ratio
        for i in range(1, k - 1):
            p[i, i], p[i, i + 1] = 1.0 - closeset_ratio, closeset_ratio
        p[k - 1, k - 1] = 1.0 - closeset_ratio
        p[k - 1, 0] = closeset_ratio
    for i in range(k, nb_classes):
        p[i, :] = 1.0 / k
    for i in range(k, nb_classes):
        p[:, i] = 0.0
    return p


def public_sampler(y, p, random_state=0):
    """The public code's multiclass_noisify: labels as an (N, 1) array, one RandomState."""
    y = np.asarray([[v] for v in y])
    new_y = y.copy()
    flipper = np.random.RandomState(random_state)
    for idx in np.arange(y.shape[0]):
        i = y[idx]
        flipped = flipper.multinomial(1, p[i, :][0], 1)[0]
        new_y[idx] = np.where(flipped == 1)[0]
    return new_y[:, 0]


def test_symmetric_matrix_matches_the_spec_example():
    p = transition_matrix("symmetric", 0.3, 1 / 3, 6)
    expected = np.array([[0.7, 0.1, 0.1, 0.1, 0, 0], [0.1, 0.7, 0.1, 0.1, 0, 0], [0.1, 0.1, 0.7, 0.1, 0, 0],
                         [0.1, 0.1, 0.1, 0.7, 0, 0], [0.25] * 4 + [0, 0], [0.25] * 4 + [0, 0]])
    np.testing.assert_allclose(p, expected, atol=1e-12)


def test_pairflip_matrix_wraps_around_the_closed_classes():
    p = transition_matrix("asymmetric", 0.3, 1 / 3, 6)
    assert p[3, 0] == pytest.approx(0.3) and p[3, 3] == pytest.approx(0.7)
    assert p[0, 1] == pytest.approx(0.3) and p[2, 3] == pytest.approx(0.3)
    assert np.all(p[:, 4:] == 0)


@pytest.mark.parametrize("kind,ratio,openset,classes", [
    ("symmetric", 0.2, 0.0, 100), ("symmetric", 0.8, 0.0, 100), ("asymmetric", 0.4, 0.0, 100),
    ("symmetric", 0.2, 0.2, 100), ("asymmetric", 0.4, 0.2, 100), ("symmetric", 0.5, 0.0, 10)])
def test_matrices_equal_the_public_code_bit_for_bit(kind, ratio, openset, classes):
    ours = transition_matrix(kind, ratio, openset, classes)
    theirs = public_matrix(kind, ratio, openset, classes)
    assert np.array_equal(ours, theirs)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)


@pytest.mark.parametrize("kind,ratio,openset", [("symmetric", 0.2, 0.0), ("asymmetric", 0.4, 0.0), ("symmetric", 0.8, 0.2)])
def test_sampled_labels_equal_the_public_sampler(kind, ratio, openset):
    labels = np.random.RandomState(7).randint(0, 100, size=3000)
    p = transition_matrix(kind, ratio, openset, 100)
    assert np.array_equal(corrupt(labels, p, seed=0), public_sampler(labels, p, 0))


def test_actual_noise_rate_is_near_the_requested_one():
    labels = np.repeat(np.arange(10), 1000)
    noisy = corrupt(labels, transition_matrix("symmetric", 0.4, 0.0, 10), seed=0)
    assert noise_report(labels, noisy)["actual_noise_rate"] == pytest.approx(0.4, abs=0.02)


def test_openset_samples_never_keep_their_label():
    labels = np.repeat(np.arange(100), 20)
    noisy = corrupt(labels, transition_matrix("symmetric", 0.2, 0.2, 100), seed=0)
    assert noisy.max() < 80
    assert np.all(noisy[labels >= 80] != labels[labels >= 80])


def test_different_seeds_give_different_labels_and_same_seed_the_same():
    labels = np.repeat(np.arange(10), 100)
    p = transition_matrix("symmetric", 0.5, 0.0, 10)
    assert np.array_equal(corrupt(labels, p, 3), corrupt(labels, p, 3))
    assert not np.array_equal(corrupt(labels, p, 3), corrupt(labels, p, 4))


def test_labels_outside_the_matrix_are_refused():
    with pytest.raises(ActError, match="noise matrix has 10 classes"):
        corrupt(np.array([0, 10]), transition_matrix("symmetric", 0.2, 0.0, 10), 0)


def test_unknown_noise_type_is_refused():
    with pytest.raises(ActError, match="symmetric or asymmetric"):
        transition_matrix("pairflip-ish", 0.2, 0.0, 10)
