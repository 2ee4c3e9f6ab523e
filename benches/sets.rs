//! The set and sequence rows, forward + backward: `cargo bench --bench sets`.
//!
//! - `fspool_fwd_bwd`: FSPool of `x [64, 100, 16]` with `W [100, 21]` (k = 20); loss = sum; gradients of x and W.
//! - `srn_outer_step`: one SRN outer step on the Circles shapes: S0 `[64, 16, 10]`, z `[64, 100]`, H_agg a
//!   per-element MLP 10->512->512->100 with ReLU, divided by the set size, then FSPool (k = 20); r = 10 inner
//!   steps of SGD with momentum 0.5 (alpha 0.1) on `sum((H_agg(S) - z)^2)` with create_graph, then the outer
//!   loss `sum(S_r^2)` and its gradients with respect to S0, z and every parameter of H_agg.
//! - `lstm_bidir_fwd_bwd`: a bidirectional single-layer LSTM, batch 16, 20 steps, 100 -> 100, with biases;
//!   loss = sum of the outputs; gradients of the input and of every weight.
//! - `small_ops_1000`: per-op overhead: 200 rounds of the residual update `y + tanh(y * a + b) * c` (1000
//!   element-wise ops) on the SRN inner loop's `[64, 16, 10]` tensors, then the gradient of the sum with respect
//!   to y0, a, b and c. (Residual, with |c| <= 0.02, so that neither values nor gradients drift into denormals.)

mod common;

use autograd::ops::fspool::fspool;
use autograd::ops::lstm::{lstm, LstmWeights};
use autograd::{Tape, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::ArrayD;
use std::rc::Rc;

fn fspool_row(c: &mut Criterion) {
    let x = Rc::new(common::uniform(&[64, 100, 16], 1.0, 1));
    let w = Rc::new(common::uniform(&[100, 21], 1.0, 2));
    let mut group = c.benchmark_group("sets");
    group.bench_function("fspool_fwd_bwd", |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let (x, w) = (tape.leaf_shared(x.clone()), tape.leaf_shared(w.clone()));
            let (y, _) = fspool(x, w, None);
            let grads = tape.grad(&[y.sum()], &[x, w], false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

/// H_agg: `[B, N, d]` -> MLP -> `/ N` -> FSPool over the N elements -> `[B, c]`. `p` = (w1, b1, w2, b2, w3, b3, pool).
fn h_agg<'t>(s: Var<'t, f32>, p: &[Var<'t, f32>]) -> Var<'t, f32> {
    let (batch, n, d) = (s.shape()[0], s.shape()[1], s.shape()[2]);
    let x = s.reshape(&[batch * n, d]);
    let h = x.linear(p[0], p[1]).relu();
    let h = h.linear(p[2], p[3]).relu();
    let h = h.linear(p[4], p[5]);
    let h = h.reshape(&[batch, n, h.shape()[1]]);
    fspool(h.permute(&[0, 2, 1]) / n as f32, p[6], None).0
}

fn srn_row(c: &mut Criterion) {
    let (batch, n, d, hidden, zdim, k, steps) = (64, 16, 10, 512, 100, 20, 10);
    let s0 = Rc::new(common::uniform(&[batch, n, d], 1.0, 1));
    let z = Rc::new(common::uniform(&[batch, zdim], 1.0, 2));
    let shapes: [&[usize]; 7] =
        [&[hidden, d], &[hidden], &[hidden, hidden], &[hidden], &[zdim, hidden], &[zdim], &[zdim, k + 1]];
    let fan_in = [d, d, hidden, hidden, hidden, hidden, 1];
    let params: Vec<Rc<ArrayD<f32>>> = shapes
        .iter()
        .zip(fan_in)
        .enumerate()
        .map(|(i, (s, f))| Rc::new(common::uniform(s, common::fan_in_scale(f), 10 + i as u64)))
        .collect();
    let mut group = c.benchmark_group("sets");
    group.bench_function("srn_outer_step", |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let s0 = tape.leaf_shared(s0.clone());
            let z = tape.leaf_shared(z.clone());
            let p: Vec<_> = params.iter().map(|v| tape.leaf_shared(v.clone())).collect();
            let mut s = s0;
            let mut buf: Option<Var<f32>> = None;
            for _ in 0..steps {
                let loss = (h_agg(s, &p) - z).square().sum();
                let g = tape.grad(&[loss], &[s], true)[0];
                let b = match buf {
                    None => g,
                    Some(b) => b * 0.5 + g,
                };
                buf = Some(b);
                s = s - b * 0.1;
            }
            let mut wrt = vec![s0, z];
            wrt.extend(&p);
            let grads = tape.grad(&[s.square().sum()], &wrt, false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

fn lstm_row(c: &mut Criterion) {
    let (batch, steps, input, hidden) = (16, 20, 100, 100);
    let x = Rc::new(common::uniform(&[batch, steps, input], 1.0, 1));
    let scale = common::fan_in_scale(hidden);
    let shapes: [&[usize]; 4] = [&[4 * hidden, input], &[4 * hidden, hidden], &[4 * hidden], &[4 * hidden]];
    let weights: Vec<Rc<ArrayD<f32>>> =
        (0..8).map(|i| Rc::new(common::uniform(shapes[i % 4], scale, 10 + i as u64))).collect();
    let mut group = c.benchmark_group("sets");
    group.bench_function("lstm_bidir_fwd_bwd", |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let x = tape.leaf_shared(x.clone());
            let w: Vec<_> = weights.iter().map(|v| tape.leaf_shared(v.clone())).collect();
            let fwd = LstmWeights::new(w[0], w[1], w[2], w[3]);
            let bwd = LstmWeights::new(w[4], w[5], w[6], w[7]);
            let (out, _) = lstm(x, &fwd, Some(&bwd), None, None);
            let mut wrt = vec![x];
            wrt.extend(&w);
            let grads = tape.grad(&[out.sum()], &wrt, false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

fn small_ops_row(c: &mut Criterion) {
    let shape = [64, 16, 10];
    let scales = [1.0, 0.5, 0.5, 0.02];
    let vals: Vec<Rc<ArrayD<f32>>> = (0..4).map(|i| Rc::new(common::uniform(&shape, scales[i], i as u64))).collect();
    let mut group = c.benchmark_group("sets");
    group.bench_function("small_ops_1000", |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let v: Vec<_> = vals.iter().map(|x| tape.leaf_shared(x.clone())).collect();
            let mut y = v[0];
            for _ in 0..200 {
                y = y + (y * v[1] + v[2]).tanh() * v[3];
            }
            let grads = tape.grad(&[y.sum()], &v, false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = fspool_row, srn_row, lstm_row, small_ops_row }
criterion_main!(benches);
