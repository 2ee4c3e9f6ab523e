//! The Circles encoder and decoder stacks, forward + backward: `cargo bench --bench conv`.
//!
//! - encoder: `[64, 3, 64, 64]` through conv 4x4 3->64 s2 p1, 64->128 s2 p1, 128->256 s2 p1, 256->512 s4 p1, ReLU
//!   after each; loss = sum; gradients of the four weights (the image needs none).
//! - decoder: `[64*16, C0, 4, 4]` (one row per set element) through ConvT 4x4 s2 p1 (4->8), ConvT 4x4 s2 p1
//!   (8->16), ReLU after each, then ConvT 4x4 s4 p0 (16->64); loss = sum; gradients of the three weights and
//!   of the input (it comes from a Linear layer in the model). Widths C0->C1->C2->3 are the paper's
//!   1024->512->256->3 and a quarter of them, 256->128->64->3.

mod common;

use autograd::{ConvGeom, Tape};
use criterion::{criterion_group, criterion_main, Criterion};
use std::rc::Rc;

fn encoder(c: &mut Criterion) {
    let x = Rc::new(common::uniform(&[64, 3, 64, 64], 1.0, 1));
    let chans = [3usize, 64, 128, 256, 512];
    let ws: Vec<_> = (0..4)
        .map(|i| {
            Rc::new(common::uniform(
                &[chans[i + 1], chans[i], 4, 4],
                common::fan_in_scale(chans[i] * 16),
                10 + i as u64,
            ))
        })
        .collect();
    let geoms = [ConvGeom::strided(2, 1), ConvGeom::strided(2, 1), ConvGeom::strided(2, 1), ConvGeom::strided(4, 1)];
    let mut group = c.benchmark_group("circles");
    group.bench_function("encoder_fwd_bwd_b64", |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let mut h = tape.leaf_shared(x.clone()).detach();
            let w: Vec<_> = ws.iter().map(|w| tape.leaf_shared(w.clone())).collect();
            for (wi, g) in w.iter().zip(geoms) {
                h = h.conv2d(*wi, g).relu();
            }
            let grads = tape.grad(&[h.sum()], &w, false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

fn decoder(c: &mut Criterion, name: &str, widths: [usize; 4]) {
    let batch = 64 * 16;
    let z = Rc::new(common::uniform(&[batch, widths[0], 4, 4], 1.0, 1));
    let ws: Vec<_> = (0..3)
        .map(|i| {
            Rc::new(common::uniform(
                &[widths[i], widths[i + 1], 4, 4],
                common::fan_in_scale(widths[i + 1] * 16),
                20 + i as u64,
            ))
        })
        .collect();
    let geoms = [ConvGeom::strided(2, 1), ConvGeom::strided(2, 1), ConvGeom::strided(4, 0)];
    let mut group = c.benchmark_group("circles");
    group.bench_function(name, |bench| {
        common::iter_on_pool(bench, || {
            let tape = Tape::<f32>::new();
            let z = tape.leaf_shared(z.clone());
            let w: Vec<_> = ws.iter().map(|w| tape.leaf_shared(w.clone())).collect();
            let mut h = z;
            for (i, (wi, g)) in w.iter().zip(geoms).enumerate() {
                h = h.conv_transpose2d(*wi, g, [0, 0]);
                if i < 2 {
                    h = h.relu();
                }
            }
            let mut wrt = w.clone();
            wrt.push(z);
            let grads = tape.grad(&[h.sum()], &wrt, false);
            criterion::black_box(grads.iter().map(|g| g.value().len()).sum::<usize>())
        })
    });
    group.finish();
}

fn decoders(c: &mut Criterion) {
    decoder(c, "decoder_quarter_fwd_bwd_1024", [256, 128, 64, 3]);
    decoder(c, "decoder_full_fwd_bwd_1024", [1024, 512, 256, 3]);
}

criterion_group! { name = benches; config = common::criterion(); targets = encoder, decoders }
criterion_main!(benches);
