//! The ops written as free functions (FSPool, batch normalisation, the LSTM) are methods of `Var` as every
//! other op is, and the method forms take PyTorch's defaults where the functions take every setting.

use autograd::check::{distinct, uniform};
use autograd::ops::fspool::fspool;
use autograd::ops::lstm::{lstm, LstmWeights};
use autograd::ops::nn::{batch_norm, BatchNormState, BATCH_NORM_MOMENTUM, NORM_EPS};
use autograd::Tape;

#[test]
fn fspool_as_a_method_is_the_function() {
    let tape = Tape::<f64>::new();
    let (x, w) = (tape.constant(distinct(&[2, 3, 4], 0.1, 1)), tape.constant(uniform(&[3, 5], -1.0, 1.0, 2)));
    let sizes = [4, 2];
    let (a, perm_a) = x.fspool(w, Some(&sizes));
    let (b, perm_b) = fspool(x, w, Some(&sizes));
    assert_eq!((a.value(), perm_a), (b.value(), perm_b));
}

#[test]
fn batch_norm_as_a_method_takes_pytorchs_momentum_and_eps() {
    assert_eq!((NORM_EPS, BATCH_NORM_MOMENTUM), (1e-5, 0.1));
    let tape = Tape::<f64>::new();
    // A small variance, so that eps shows in the output.
    let x = tape.constant(uniform(&[4, 3], -1e-3, 1e-3, 3));
    let (mut s1, mut s2) = (BatchNormState::new(3), BatchNormState::new(3));
    let a = x.batch_norm(None, None, Some(&mut s1), true);
    let b = batch_norm(x, None, None, Some(&mut s2), true, 0.1, 1e-5);
    let c = batch_norm(x, None, None, None, true, 0.1, 1e-3);
    assert_eq!(*a.value(), *b.value());
    assert_eq!(s1, s2, "the running statistics move with momentum 0.1");
    assert!((&*a.value() - &*c.value()).iter().any(|d| d.abs() > 1e-3), "eps is 1e-5, not 1e-3");
}

#[test]
fn lstm_as_a_method_is_the_function() {
    let tape = Tape::<f64>::new();
    let c = |shape: &[usize], seed| tape.constant(uniform(shape, -0.5, 0.5, seed));
    let w = LstmWeights::new(c(&[12, 2], 4), c(&[12, 3], 5), c(&[12], 6), c(&[12], 7));
    let x = c(&[2, 4, 2], 8);
    let lengths = [4, 2];
    let (a, (ha, ca)) = x.lstm(&w, Some(&w), None, Some(&lengths));
    let (b, (hb, cb)) = lstm(x, &w, Some(&w), None, Some(&lengths));
    assert_eq!((a.value(), ha.value(), ca.value()), (b.value(), hb.value(), cb.value()));
}
