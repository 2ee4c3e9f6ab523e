//! One Sort-of-CLEVR relation-network training step, batch 64: `cargo bench --bench rn`.
//!
//! The RN of Santoro et al. as in the public Sort-of-CLEVR code: four conv 3x3 s2 p1 layers of 24 channels with
//! bias, each followed by ReLU and batch norm (training mode), on `[64, 3, 75, 75]` images (75 -> 38 -> 19 -> 10
//! -> 5); the 25 cells plus 2 coordinates are the objects; g takes every ordered pair of objects with the
//! question (11 values): 26 + 26 + 11 = 63 -> 256 -> 256 -> 256 -> 256 with ReLU, summed over the 625 pairs;
//! f is 256 -> 256 -> 256 -> 10 with ReLU between; cross-entropy on 10 classes; then one Adam step (lr 1e-4).

mod common;

use autograd::ops::loss::cross_entropy;
use autograd::ops::nn::{batch_norm, BatchNormState};
use autograd::{concat, ConvGeom, Tape, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use models::{Adam, AdamConfig, Mlp, Module, Optimizer, Param, Scope};
use ndarray::ArrayD;
use rand::{rngs::StdRng, SeedableRng};

/// A conv layer's weight, bias, and its batch norm's gamma and beta.
type ConvBn = (Param<f32>, Param<f32>, Param<f32>, Param<f32>);

struct Rn {
    convs: Vec<ConvBn>,
    g: Mlp<f32>,
    f: Mlp<f32>,
}

impl Rn {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let convs = (0..4)
            .map(|i| {
                let cin = if i == 0 { 3 } else { 24 };
                let s = common::fan_in_scale(cin * 9);
                (
                    Param::new(common::uniform(&[24, cin, 3, 3], s, 10 + i)),
                    Param::new(common::uniform(&[1, 24, 1, 1], s, 20 + i)),
                    Param::new(ArrayD::ones(vec![24])),
                    Param::new(ArrayD::zeros(vec![24])),
                )
            })
            .collect();
        let g = Mlp::with_activations(
            &[63, 256, 256, 256, 256],
            models::Activation::Relu,
            models::Activation::Relu,
            &mut rng,
        );
        let f = Mlp::new(&[256, 256, 256, 10], &mut rng);
        Rn { convs, g, f }
    }

    fn params(&self) -> Vec<(String, Param<f32>)> {
        let mut p = Vec::new();
        for (i, (w, b, gamma, beta)) in self.convs.iter().enumerate() {
            for (name, q) in [("w", w), ("b", b), ("gamma", gamma), ("beta", beta)] {
                p.push((format!("conv{i}.{name}"), q.clone()));
            }
        }
        p.extend(models::prefixed("g", self.g.params()));
        p.extend(models::prefixed("f", self.f.params()));
        p
    }

    fn loss<'t>(
        &self,
        scope: &Scope<'t, f32>,
        img: Var<'t, f32>,
        q: Var<'t, f32>,
        labels: &[usize],
        bn: &mut [BatchNormState<f32>],
    ) -> Var<'t, f32> {
        let mut h = img;
        for ((w, b, gamma, beta), state) in self.convs.iter().zip(bn.iter_mut()) {
            h = (h.conv2d(scope.param(w), ConvGeom::strided(2, 1)) + scope.param(b)).relu();
            h = batch_norm(h, Some(scope.param(gamma)), Some(scope.param(beta)), Some(state), true, 0.1, 1e-5);
        }
        let (batch, ch, side) = (h.shape()[0], h.shape()[1], h.shape()[2]);
        let cells = side * side;
        let objects = h.reshape(&[batch, ch, cells]).permute(&[0, 2, 1]);
        let coords = ArrayD::from_shape_fn(vec![batch, cells, 2], |ix| {
            let cell = ix[1];
            let v = if ix[2] == 0 { cell / side } else { cell % side };
            (v as f32 - 2.0) / 2.0
        });
        let objects = concat(&[objects, img.constant(coords)], 2);
        let d = ch + 2;
        let qlen = q.shape()[1];
        let oi = objects.unsqueeze(1).broadcast_to(&[batch, cells, cells, d]);
        let oq = concat(&[objects, q.unsqueeze(1).broadcast_to(&[batch, cells, qlen])], 2);
        let oj = oq.unsqueeze(2).broadcast_to(&[batch, cells, cells, d + qlen]);
        let pairs = concat(&[oi, oj], 3).reshape(&[batch * cells * cells, 2 * d + qlen]);
        let rel = self.g.forward(scope, pairs).reshape(&[batch, cells * cells, 256]).sum_axes(&[1], false);
        cross_entropy(self.f.forward(scope, rel), labels)
    }
}

fn rn_step(c: &mut Criterion) {
    let batch = 64;
    let img = common::uniform(&[batch, 3, 75, 75], 1.0, 1).mapv(|v| v * 0.5 + 0.5);
    let q = common::uniform(&[batch, 11], 1.0, 2).mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7) % 10).collect();
    let model = Rn::new();
    let mut opt = Adam::new(model.params(), AdamConfig { lr: 1e-4, ..Default::default() });
    let mut bn: Vec<_> = (0..4).map(|_| BatchNormState::new(24)).collect();
    let mut group = c.benchmark_group("rn");
    group.bench_function("sort_of_clevr_train_step_b64", |bench| {
        bench.iter(|| {
            let tape = Tape::<f32>::new();
            let scope = Scope::new(&tape);
            let loss = model.loss(&scope, tape.constant(img.clone()), tape.constant(q.clone()), &labels, &mut bn);
            let grads = scope.grads(&[loss]);
            opt.step(&grads);
            criterion::black_box(loss.item())
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = rn_step }
criterion_main!(benches);
