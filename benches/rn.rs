//! One Sort-of-CLEVR training step of the experiment's models, batch 64: `cargo bench --bench rn`.
//!
//! `rn/sort_of_clevr_train_step_b64` is the relation network of the experiment
//! (`experiments::sort_of_clevr::model`): four conv 3x3 s2 p1 layers of 24 channels with ReLU and batch norm on
//! `[64, 3, 75, 75]` images, the 25 cells plus 2 coordinates as objects, g over all 625 ordered pairs with the
//! question (63 -> 256 x 4, its first layer applied per object and broadcast over pairs, which is exact), summed;
//! f 256 -> 256 -> 256 -> 10 with dropout; cross-entropy; one Adam step (lr 1e-4). The PyTorch peer times the
//! reference's formulation of the same model (the `[64 * 625, 63]` pair matrix through g).
//! `rn/sort_of_clevr_srn_train_step_b64` is RN + SRN (r = 5 inner steps, recorded for the outer backward).

mod common;

use autograd::ops::loss::cross_entropy;
use autograd::Tape;
use criterion::{criterion_group, criterion_main, Criterion};
use experiments::sort_of_clevr::data::SortOfClevr;
use experiments::sort_of_clevr::model::{RnConfig, RnModel};
use models::{Adam, AdamConfig, Module, Optimizer, Scope};
use rand::{rngs::StdRng, SeedableRng};

fn rn_step(c: &mut Criterion) {
    let data = SortOfClevr::generate(4, 1);
    let batch = data.batch(&(0..64).collect::<Vec<_>>());
    let mut group = c.benchmark_group("rn");
    for (name, config) in
        [("sort_of_clevr_train_step_b64", RnConfig::rn()), ("sort_of_clevr_srn_train_step_b64", RnConfig::rn_srn())]
    {
        let model = RnModel::new(&config, &mut StdRng::seed_from_u64(7));
        let mut opt = Adam::new(model.params(), AdamConfig { lr: 1e-4, ..Default::default() });
        let mut step = 0u64;
        group.bench_function(name, |bench| {
            common::iter_on_pool(bench, || {
                let tape = Tape::<f32>::new();
                let scope = Scope::new(&tape);
                let images = tape.constant(batch.images.clone());
                let questions = tape.constant(batch.questions.clone());
                step += 1;
                let (logits, _) = model.forward(&scope, images, questions, step);
                let loss = cross_entropy(logits, &batch.answers);
                let grads = model.grads(&scope, &[loss]);
                opt.step(&grads);
                criterion::black_box(loss.item())
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = rn_step }
criterion_main!(benches);
