//! Symmetries of the Circles models (property tests): H_agg is invariant to the order of the set's elements,
//! the SRN's refinement is equivariant to it, and the decoder's image is invariant to it.

mod common;

use autograd::Tape;
use common::{close, permutation, refined};
use experiments::circles::model::{CirclesModel, ModelConfig, ELEMENT_DIM, SET_SIZE};
use models::{Module, Scope, SetEncoder, SrnConfig};
use ndarray::{ArrayD, Axis};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn small_srn_model(seed: u64) -> CirclesModel {
    let srn = SrnConfig { steps: 3, alpha: 0.1, momentum: 0.5, learn_s0: false, ..SrnConfig::default() };
    let config = ModelConfig::paper_shape(4, 8, 16, Some(srn));
    CirclesModel::new(&config, &mut StdRng::seed_from_u64(seed))
}

fn random_set(seed: u64, batch: usize) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    ArrayD::from_shape_simple_fn(vec![batch, SET_SIZE, ELEMENT_DIM], || rng.gen_range(-1.0..1.0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn h_agg_is_invariant_to_element_order(seed in 0u64..1000, pseed in 0u64..1000) {
        let model = small_srn_model(seed);
        let h_agg = &model.srn.as_ref().unwrap().encoder;
        let set = random_set(seed + 1, 2);
        let encode = |s: ArrayD<f32>| {
            let tape = Tape::new();
            let scope = Scope::new(&tape);
            (*h_agg.encode(&scope, tape.constant(s), None).value()).clone()
        };
        let permuted = set.select(Axis(1), &permutation(SET_SIZE, pseed));
        prop_assert!(close(&encode(set), &encode(permuted), 1e-5));
    }

    #[test]
    fn srn_refinement_is_equivariant_to_element_order(seed in 0u64..1000, pseed in 0u64..1000) {
        let model = small_srn_model(seed);
        let srn = model.srn.as_ref().unwrap();
        let set = random_set(seed + 1, 2);
        let mut rng = StdRng::seed_from_u64(seed + 2);
        let z = ArrayD::from_shape_simple_fn(vec![2, 100], || rng.gen_range(-1.0f32..1.0));
        let refine = |s: ArrayD<f32>| refined(srn, &s, &z);
        let perm = permutation(SET_SIZE, pseed);
        let refined = refine(set.clone());
        prop_assert!(close(&refine(set.select(Axis(1), &perm)), &refined.select(Axis(1), &perm), 1e-4));
    }

    #[test]
    fn decoded_image_is_invariant_to_element_order(seed in 0u64..1000, pseed in 0u64..1000) {
        let model = small_srn_model(seed);
        model.decoder.set_training(false);
        let set = random_set(seed + 1, 2);
        let decode = |s: ArrayD<f32>| {
            let tape = Tape::new();
            let scope = Scope::new(&tape);
            (*tape.no_grad(|| model.decoder.forward(&scope, tape.constant(s))).image.value()).clone()
        };
        let permuted = set.select(Axis(1), &permutation(SET_SIZE, pseed));
        prop_assert!(close(&decode(set), &decode(permuted), 1e-5));
    }
}

/// The responsibility problem, on a concrete pair of images: moving one circle (and nothing else) should, for
/// a set whose elements are objects, change one element and leave the rest of the set as it was. The
/// baseline's set generator reads every element off a fixed group of the final feature map, and each group
/// sees the whole image, so moving the circle changes every element of S0: no element is "the circle's".
#[test]
fn baseline_set_generator_spreads_one_moved_object_over_every_element() {
    use experiments::circles::data::{Circle, Circles};
    let config = ModelConfig::paper_shape(8, 8, 8, None);
    let model = CirclesModel::new(&config, &mut StdRng::seed_from_u64(5));
    model.encoder.set_training(false);
    let mut pair = Circles::empty(experiments::circles::data::Scene::PAPER);
    pair.push(&[Circle { x: 16, y: 32, r: 6, colour: 0 }]);
    pair.push(&[Circle { x: 48, y: 32, r: 6, colour: 0 }]);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let images = experiments::circles::train::batch(&pair, &[0, 1]);
    let (s0, _) = tape.no_grad(|| model.encoder.forward(&scope, tape.constant(images)));
    let s0 = s0.value();
    let changed = (0..SET_SIZE)
        .filter(|&i| {
            let (a, b) = (s0.slice(ndarray::s![0, i, ..]), s0.slice(ndarray::s![1, i, ..]));
            a.iter().zip(b.iter()).any(|(x, y)| (x - y).abs() > 1e-4 * (1.0 + x.abs()))
        })
        .count();
    assert_eq!(changed, SET_SIZE, "moving one circle changed only {changed} of the {SET_SIZE} elements");
}

/// The `small` profile's shapes: 32 x 32 images, 8 elements, every image and element decoded at 32 x 32.
#[test]
fn the_small_model_decodes_32_pixel_images_from_8_elements() {
    use experiments::circles::data::{Circles, Scene};
    let srn = SrnConfig { steps: 2, ..SrnConfig::default() };
    let config = ModelConfig { set_size: 8, image_side: 32, ..ModelConfig::paper_shape(4, 8, 16, Some(srn)) };
    let model = CirclesModel::new(&config, &mut StdRng::seed_from_u64(1));
    let data = Circles::generate(Scene::SMALL, 3, 2);
    let tape = Tape::new();
    let scope = Scope::new(&tape);
    let x = tape.constant(experiments::circles::train::batch(&data, &[0, 1, 2]));
    let out = model.forward(&scope, x);
    assert_eq!(out.set.shape(), vec![3, 8, ELEMENT_DIM]);
    assert_eq!(out.decoded.image.shape(), vec![3, 3, 32, 32]);
    assert_eq!(out.decoded.elements.shape(), vec![3, 8, 3, 32, 32]);
    assert_eq!(out.inner_losses.len(), 2);
}
