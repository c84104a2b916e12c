"""Float64 numpy reference for an FQ float graph: runs the written YAML + blob generically, by op
name, on all 10,000 digits, and compares with the trainer's torch predictions (meta torch_errors).
This proves the file means what the trainer meant.
Usage: /usr/bin/python3 tools/ref_digits.py graphs/digits/digits-f32.yaml [--shared DIR]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fqformat  # noqa: E402
from digits_split import DEFAULT_SHARED, load_digits, train_heldout_split  # noqa: E402


def conv2d(x, w, b, stride=1, pad=0, pads=None, relu=0):
    top, left, bottom, right = pads or [pad] * 4
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    _, kh, kw, _ = w.shape
    ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0] * ho * wo, w.shape[0])) + b
    # One 2-D product per tap (no im2col copy of the whole input). einsum, not @: Debian's numpy
    # here links the reference (netlib) BLAS, which einsum's own SIMD loops beat by ~2-3x.
    for i in range(kh):
        for j in range(kw):
            tap = x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            y += np.einsum('nk,ok->no', tap.reshape(-1, x.shape[3]), w[:, i, j])
    y = y.reshape(x.shape[0], ho, wo, -1)
    return np.maximum(y, 0) if relu else y


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


OPS = {
    'conv2d': conv2d,
    'add': lambda *xs, relu=0: (lambda s: np.maximum(s, 0) if relu else s)(sum(xs)),
    'global_avg_pool': lambda x: x.mean((1, 2)),
    'fully_connected': lambda x, w, b, relu=0: (lambda y: np.maximum(y, 0) if relu else y)(
        x @ w.T + b),
    'softmax': softmax,
    'relu': lambda x: np.maximum(x, 0),
}


def run(graph, consts, feeds):
    """Executes nodes in topological order, keeping the listed order where possible."""
    env = {k: v.astype(np.float64) for k, v in consts.items()}
    env.update(feeds)
    todo = list(graph['nodes'])
    while todo:
        node = next(n for n in todo if all(i in env for i in n['inputs']))
        todo.remove(node)
        out = OPS[node['op']](*[env[i] for i in node['inputs']], **node.get('attrs', {}))
        env[node['outputs'][0]] = out
    return [env[o] for o in graph['outputs']]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('yaml')
    ap.add_argument('--shared', default=DEFAULT_SHARED, help='shared data folder (../shared)')
    ap.add_argument('--batch', type=int, default=250,
                    help='images per pass; small batches avoid page-faulting huge temporaries')
    args = ap.parse_args()

    graph, consts = fqformat.read_model(args.yaml)   # verifies every checksum and alignment
    images, labels = load_digits(args.shared)
    x = images[..., None].astype(np.float64) / 255   # NHWC, real value = pixel / 255
    name = graph['inputs'][0]
    probs = np.concatenate([run(graph, consts, {name: x[i:i + args.batch]})[0]
                            for i in range(0, len(x), args.batch)])
    pred = probs.argmax(1)
    train, held = train_heldout_split()
    print('%s: accuracy train %.2f %%  held-out %.2f %%  all %.2f %%' % (
        args.yaml, *(100 * (pred[ix] == labels[ix]).mean() for ix in (train, held, slice(None)))))

    meta = graph.get('meta', {})
    if 'torch_errors' in meta:
        torch_pred = labels.astype(np.int64)
        for item in meta['torch_errors'].split():
            i, p = map(int, item.split(':'))
            torch_pred[i] = p
        diff = np.flatnonzero(pred != torch_pred)
        print('predictions differing from torch: %d %s' % (len(diff), diff[:20].tolist()))
        top = np.sort(probs, 1)
        print('smallest top-1 / top-2 probability gap: %.2e' % (top[:, -1] - top[:, -2]).min())
        # f32 torch vs f64 numpy may flip a near-tie or two; more means the file is wrong.
        return 1 if len(diff) > 2 else 0


if __name__ == '__main__':
    sys.exit(main())
