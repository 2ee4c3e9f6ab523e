//! First- and second-order gradient checks of reductions, shape ops, indexing and matmul.

use autograd::check::{distinct, uniform};
use autograd::{concat, grad_tests, stack};
use ndarray::{array, ArrayD};

fn idx(v: ndarray::ArrayD<usize>) -> ArrayD<usize> {
    v
}

grad_tests! {
    sum_all: |t, x| x[0].sum() * x[0], [uniform(&[2, 3], -1.0, 1.0, 1)];
    sum_axes: |t, x| x[0].sum_axes(&[0, 2], false).square(), [uniform(&[2, 3, 4], -1.0, 1.0, 2)];
    sum_keepdim: |t, x| x[0].sum_axes(&[1], true) * x[0], [uniform(&[2, 3], -1.0, 1.0, 3)];
    mean: |t, x| x[0].mean_axes(&[1], false).square(), [uniform(&[2, 3, 2], -1.0, 1.0, 4)];
    max: |t, x| x[0].max_axes(&[1], false).square(), [distinct(&[3, 4], 0.1, 5)];
    max_keepdim_multi: |t, x| x[0].max_axes(&[0, 2], true) * x[0], [distinct(&[2, 3, 2], 0.1, 6)];
    logsumexp: |t, x| x[0].logsumexp(&[1], false), [uniform(&[3, 4], -2.0, 2.0, 7)];
    logsumexp_keepdim: |t, x| x[0].logsumexp(&[0], true) * x[0], [uniform(&[3, 2], -2.0, 2.0, 8)];
    reshape: |t, x| x[0].reshape(&[3, 2]).square(), [uniform(&[2, 3], -1.0, 1.0, 9)];
    permute: |t, x| x[0].permute(&[2, 0, 1]).square() * x[1], [uniform(&[2, 3, 4], -1.0, 1.0, 10), uniform(&[4, 2, 3], -1.0, 1.0, 11)];
    transpose: |t, x| x[0].t().matmul(x[0]), [uniform(&[3, 2], -1.0, 1.0, 12)];
    broadcast_to: |t, x| x[0].broadcast_to(&[2, 3, 4]).square(), [uniform(&[3, 1], -1.0, 1.0, 13)];
    sum_to: |t, x| x[0].sum_to(&[3, 1]).square(), [uniform(&[2, 3, 4], -1.0, 1.0, 14)];
    concat_axis1: |t, x| concat(&[x[0], x[1], x[0]], 1).square(), [uniform(&[2, 3], -1.0, 1.0, 15), uniform(&[2, 1], -1.0, 1.0, 16)];
    stack_axis0: |t, x| stack(&[x[0], x[1]], 0).square(), [uniform(&[2, 3], -1.0, 1.0, 17), uniform(&[2, 3], -1.0, 1.0, 18)];
    narrow: |t, x| x[0].narrow(1, 1, 2).square(), [uniform(&[2, 4], -1.0, 1.0, 19)];
    pad: |t, x| x[0].pad(&[(1, 0), (2, 1)]).square() * x[1], [uniform(&[2, 3], -1.0, 1.0, 20), uniform(&[3, 6], -1.0, 1.0, 21)];
    index_select: |t, x| x[0].index_select(0, &[2, 0, 2, 1]).square(), [uniform(&[3, 2], -1.0, 1.0, 22)];
    index_add: |t, x| x[0].index_add(1, &[1, 1, 0], 3).square(), [uniform(&[2, 3], -1.0, 1.0, 23)];
    gather: |t, x| x[0].gather(1, &idx(array![[2, 0, 0], [1, 1, 2]].into_dyn())).square(), [uniform(&[2, 3], -1.0, 1.0, 24)];
    scatter_add: |t, x| x[0].scatter_add(1, &idx(array![[2, 0], [1, 1]].into_dyn()), &[2, 3]).square(), [uniform(&[2, 2], -1.0, 1.0, 25)];
    matmul_2d: |t, x| x[0].matmul(x[1]).square(), [uniform(&[2, 3], -1.0, 1.0, 26), uniform(&[3, 4], -1.0, 1.0, 27)];
    matmul_batched: |t, x| x[0].matmul(x[1]).square(), [uniform(&[2, 2, 3], -1.0, 1.0, 28), uniform(&[2, 3, 2], -1.0, 1.0, 29)];
    matmul_batch_by_2d: |t, x| x[0].matmul(x[1]).square(), [uniform(&[2, 2, 3], -1.0, 1.0, 30), uniform(&[3, 2], -1.0, 1.0, 31)];
    matmul_nt_2d: |t, x| x[0].matmul_nt(x[1]).square(), [uniform(&[2, 3], -1.0, 1.0, 34), uniform(&[4, 3], -1.0, 1.0, 35)];
    linear: |t, x| x[0].linear(x[1], x[2]).square(), [uniform(&[5, 3], -1.0, 1.0, 40), uniform(&[4, 3], -1.0, 1.0, 41), uniform(&[4], -1.0, 1.0, 42)];
    matmul_nt_batched: |t, x| x[0].matmul_nt(x[1]).square(), [uniform(&[2, 2, 3], -1.0, 1.0, 36), uniform(&[2, 4, 3], -1.0, 1.0, 37)];
    matmul_nt_batch_by_2d: |t, x| x[0].matmul_nt(x[1]).square(), [uniform(&[2, 2, 3], -1.0, 1.0, 38), uniform(&[4, 3], -1.0, 1.0, 39)];
    matmul_2d_by_batch: |t, x| x[0].matmul(x[1]).square(), [uniform(&[2, 3], -1.0, 1.0, 32), uniform(&[2, 3, 2], -1.0, 1.0, 33)];
}

#[test]
fn linear_is_the_product_with_the_transposed_weight_plus_the_bias() {
    let tape = autograd::Tape::<f64>::new();
    let x = tape.leaf(uniform(&[7, 3], -1.0, 1.0, 50));
    let w = tape.leaf(uniform(&[4, 3], -1.0, 1.0, 51));
    let b = tape.leaf(uniform(&[4], -1.0, 1.0, 52));
    let (fused, composite) = (x.linear(w, b).value(), (x.matmul_nt(w) + b).value());
    assert_eq!(fused.shape(), &[7, 4]);
    assert!(fused.iter().zip(composite.iter()).all(|(a, c)| (a - c).abs() < 1e-12));
}

#[test]
#[should_panic(expected = "linear: input [7, 3], weight [4, 2] and bias [4] do not match")]
fn linear_names_all_three_shapes_when_they_do_not_fit() {
    let tape = autograd::Tape::<f64>::new();
    let x = tape.leaf(uniform(&[7, 3], -1.0, 1.0, 50));
    let _ = x.linear(tape.leaf(uniform(&[4, 2], -1.0, 1.0, 51)), tape.leaf(uniform(&[4], -1.0, 1.0, 52)));
}
