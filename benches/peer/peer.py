"""PyTorch peer of the Rust benches: the same computations at the same shapes, on the CPU, with the same thread
count. Prints one JSON object per row: {"id": "<group>/<name>", "median_s": .., "mean_s": .., "iters": ..}.

Usage: python3 benches/peer/peer.py [--threads 2] [--quick] [--only SUBSTRING]
Optional and outside CI; needs `pip install torch`.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def timed(fn, min_time, min_iters=10, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def u(*shape, scale=1.0):
    return (torch.rand(*shape) * 2 - 1) * scale


def fan(n):
    return 1.0 / n ** 0.5


def sgemm(n):
    a, b = u(n, n), u(n, n)
    return lambda: torch.mm(a, b)


def sgemm_variants():
    n = 512
    a, b = u(n, n), u(n, n)
    x, y = u(64, 64, 64), u(64, 64, 64)
    return {
        "sgemm_variants/at_b_512": lambda: torch.mm(a.t(), b),
        "sgemm_variants/a_bt_512": lambda: torch.mm(a, b.t()),
        "sgemm_variants/batched_64x64x64x64": lambda: torch.bmm(x, y),
    }


def encoder():
    x = u(64, 3, 64, 64)
    chans = [3, 64, 128, 256, 512]
    ws = [u(chans[i + 1], chans[i], 4, 4, scale=fan(chans[i] * 16)).requires_grad_() for i in range(4)]
    geoms = [(2, 1), (2, 1), (2, 1), (4, 1)]

    def step():
        h = x
        for w, (s, p) in zip(ws, geoms):
            h = F.conv2d(h, w, stride=s, padding=p).relu()
        torch.autograd.grad(h.sum(), ws)

    return step


def decoder(widths):
    z = u(64 * 16, widths[0], 4, 4).requires_grad_()
    ws = [u(widths[i], widths[i + 1], 4, 4, scale=fan(widths[i + 1] * 16)).requires_grad_() for i in range(3)]
    geoms = [(2, 1), (2, 1), (4, 0)]

    def step():
        h = z
        for i, (w, (s, p)) in enumerate(zip(ws, geoms)):
            h = F.conv_transpose2d(h, w, stride=s, padding=p)
            if i < 2:
                h = h.relu()
        torch.autograd.grad(h.sum(), ws + [z])

    return step


def interpolation_matrix(k, n):
    """[k+1, n]: W @ M gives the per-position weights of a set of n elements (as the Rust engine's)."""
    m = torch.zeros(k + 1, n)
    denom = max(n - 1, 1)
    for j in range(n):
        idx = k * j // denom
        frac = (k * j % denom) / denom
        m[idx, j] += 1 - frac
        m[min(idx + 1, k), j] += frac
    return m


def fspool(x, w, m):
    sorted_x, _ = x.sort(dim=2, descending=True)
    return (sorted_x * (w @ m)).sum(2)


def fspool_row():
    x = u(64, 100, 16).requires_grad_()
    w = u(100, 21).requires_grad_()
    m = interpolation_matrix(20, 16)

    def step():
        y = fspool(x, w, m)
        torch.autograd.grad(y.sum(), [x, w])

    return step


def srn_row():
    batch, n, d, hidden, zdim, k, steps = 64, 16, 10, 512, 100, 20, 10
    s0 = u(batch, n, d).requires_grad_()
    z = u(batch, zdim).requires_grad_()
    shapes = [(hidden, d), (hidden,), (hidden, hidden), (hidden,), (zdim, hidden), (zdim,), (zdim, k + 1)]
    fans = [d, d, hidden, hidden, hidden, hidden, 1]
    p = [u(*s, scale=fan(f)).requires_grad_() for s, f in zip(shapes, fans)]
    m = interpolation_matrix(k, n)

    def h_agg(s):
        h = F.linear(s, p[0], p[1]).relu()
        h = F.linear(h, p[2], p[3]).relu()
        h = F.linear(h, p[4], p[5])
        return fspool(h.permute(0, 2, 1) / n, p[6], m)

    def step():
        s, buf = s0, None
        for _ in range(steps):
            loss = (h_agg(s) - z).square().sum()
            (g,) = torch.autograd.grad(loss, [s], create_graph=True)
            buf = g if buf is None else buf * 0.5 + g
            s = s - buf * 0.1
        torch.autograd.grad(s.square().sum(), [s0, z] + p)

    return step


def lstm_row():
    batch, steps, size = 16, 20, 100
    lstm = torch.nn.LSTM(size, size, batch_first=True, bidirectional=True)
    x = u(batch, steps, size).requires_grad_()
    params = list(lstm.parameters())

    def step():
        out, _ = lstm(x)
        torch.autograd.grad(out.sum(), [x] + params)

    return step


def small_ops_row():
    v = [u(64, 16, 10, scale=s).requires_grad_() for s in (1.0, 0.5, 0.5, 0.02)]

    def step():
        y = v[0]
        for _ in range(200):
            y = y + (y * v[1] + v[2]).tanh() * v[3]
        torch.autograd.grad(y.sum(), v)

    return step


class Rn(torch.nn.Module):
    """The experiment's RN (the reference's formulation: the [B*625, 63] pair matrix through g); with `srn`, the
    SRN between the convs and g as in experiments/src/sort_of_clevr/model.rs: S0 the 25 objects (learned),
    z = Linear(600 -> 64) of the conv features, H_agg = 26 -> 128 -> 128 -> 64 (ReLU between) / 25 then FSPool (k = 20),
    r = 5 inner steps, alpha 1.0, momentum 0.5, recorded with create_graph."""

    def __init__(self, srn=False):
        super().__init__()
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(3 if i == 0 else 24, 24, 3, stride=2, padding=1) for i in range(4)])
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm2d(24) for _ in range(4)])
        self.g = torch.nn.ModuleList([torch.nn.Linear(63 if i == 0 else 256, 256) for i in range(4)])
        self.f = torch.nn.ModuleList([torch.nn.Linear(256, 256), torch.nn.Linear(256, 256), torch.nn.Linear(256, 10)])
        self.srn = srn
        if srn:
            self.embed = torch.nn.Linear(600, 64)
            self.hagg = torch.nn.ModuleList([torch.nn.Linear(26, 128), torch.nn.Linear(128, 128), torch.nn.Linear(128, 64)])
            self.pool = torch.nn.Parameter(torch.randn(64, 21))
            self.register_buffer("m", interpolation_matrix(20, 25))

    def h_agg(self, s):
        h = self.hagg[1](self.hagg[0](s).relu()).relu()
        h = self.hagg[2](h)
        return fspool(h.permute(0, 2, 1) / s.shape[1], self.pool, self.m)

    def refine(self, s, z):
        buf = None
        for _ in range(5):
            loss = (self.h_agg(s) - z).square().sum()
            (g,) = torch.autograd.grad(loss, [s], create_graph=True)
            buf = g if buf is None else buf * 0.5 + g
            s = s - buf * 1.0
        return s

    def forward(self, img, q):
        h = img
        for conv, bn in zip(self.convs, self.bns):
            h = bn(conv(h).relu())
        batch, ch, side, _ = h.shape
        cells = side * side
        objects = h.reshape(batch, ch, cells).permute(0, 2, 1)
        idx = torch.arange(cells)
        coords = torch.stack([(idx // side).float(), (idx % side).float()], 1).sub(2).div(2)
        objects = torch.cat([objects, coords.expand(batch, cells, 2)], 2)
        if self.srn:
            objects = self.refine(objects, self.embed(h.reshape(batch, -1)))
        d = ch + 2
        oi = objects.unsqueeze(1).expand(batch, cells, cells, d)
        oq = torch.cat([objects, q.unsqueeze(1).expand(batch, cells, q.shape[1])], 2)
        oj = oq.unsqueeze(2).expand(batch, cells, cells, oq.shape[2])
        x = torch.cat([oi, oj], 3).reshape(batch * cells * cells, -1)
        for layer in self.g:
            x = layer(x).relu()
        x = x.reshape(batch, cells * cells, 256).sum(1)
        x = F.dropout(self.f[1](self.f[0](x).relu()).relu(), 0.5, training=True)
        return self.f[2](x)


def rn_row(srn=False):
    batch = 64
    model = Rn(srn)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    img = torch.rand(batch, 3, 75, 75)
    q = (torch.rand(batch, 11) > 0.5).float()
    labels = torch.tensor([(i * 7) % 10 for i in range(batch)])

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(img, q), labels)
        loss.backward()
        opt.step()

    return step


def rows():
    for n in (256, 512, 1024):
        yield f"sgemm/{n}", lambda n=n: sgemm(n)
    for n in (256, 512, 1024):
        yield f"sgemm_1thread/{n}", lambda n=n: sgemm(n)
    for name, fn in sgemm_variants().items():
        yield name, lambda fn=fn: fn
    yield "circles/encoder_fwd_bwd_b64", encoder
    yield "circles/decoder_quarter_fwd_bwd_1024", lambda: decoder([256, 128, 64, 3])
    yield "circles/decoder_full_fwd_bwd_1024", lambda: decoder([1024, 512, 256, 3])
    yield "sets/fspool_fwd_bwd", fspool_row
    yield "sets/srn_outer_step", srn_row
    yield "sets/lstm_bidir_fwd_bwd", lstm_row
    yield "sets/small_ops_1000", small_ops_row
    yield "rn/sort_of_clevr_train_step_b64", rn_row
    yield "rn/sort_of_clevr_srn_train_step_b64", lambda: rn_row(srn=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for name, make in rows():
        if args.only and args.only not in name:
            continue
        fn = make()
        torch.set_num_threads(1 if name.startswith("sgemm_1thread/") else args.threads)
        times = timed(fn, 1.0 if args.quick else 5.0, min_iters=3 if args.quick else 10, warmup=1 if args.quick else 2)
        print(json.dumps({"id": name, "median_s": statistics.median(times), "mean_s": statistics.mean(times), "iters": len(times)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
