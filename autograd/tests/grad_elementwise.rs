//! First- and second-order gradient checks of the element-wise ops, with broadcasting.

use autograd::check::{away_from_zero, distinct, uniform};
use autograd::grad_tests;

grad_tests! {
    add: |t, x| x[0] + x[1], [uniform(&[2, 3], -1.0, 1.0, 1), uniform(&[3], -1.0, 1.0, 2)];
    add_broadcast_both: |t, x| x[0] + x[1], [uniform(&[2, 1, 4], -1.0, 1.0, 1), uniform(&[3, 1], -1.0, 1.0, 2)];
    sub: |t, x| x[0] - x[1], [uniform(&[2, 3], -1.0, 1.0, 3), uniform(&[2, 1], -1.0, 1.0, 4)];
    mul: |t, x| x[0] * x[1], [uniform(&[2, 3], -1.0, 1.0, 5), uniform(&[1, 3], -1.0, 1.0, 6)];
    div: |t, x| x[0] / x[1], [uniform(&[2, 3], -1.0, 1.0, 7), uniform(&[3], 0.5, 2.0, 8)];
    neg: |t, x| -x[0], [uniform(&[4], -1.0, 1.0, 9)];
    scalar_ops: |t, x| ((x[0] + 1.5) * 2.0 - 0.5) / 3.0, [uniform(&[4], -1.0, 1.0, 10)];
    powf: |t, x| x[0].powf(2.5), [uniform(&[2, 3], 0.5, 2.0, 11)];
    powf_negative: |t, x| x[0].powf(-1.5), [uniform(&[5], 0.5, 2.0, 12)];
    exp: |t, x| x[0].exp(), [uniform(&[2, 3], -1.0, 1.0, 13)];
    log: |t, x| x[0].log(), [uniform(&[2, 3], 0.5, 2.0, 14)];
    sqrt: |t, x| x[0].sqrt(), [uniform(&[2, 3], 0.5, 2.0, 15)];
    abs: |t, x| x[0].abs() * x[0], [away_from_zero(&[2, 3], 0.1, 1.0, 16)];
    clamp: |t, x| x[0].clamp(-0.5, 0.5) * x[0], [distinct(&[9], 0.23, 17)];
    maximum: |t, x| x[0].maximum(x[1]) * x[0], [distinct(&[2, 3], 0.2, 18), distinct(&[3], 0.31, 19)];
    minimum: |t, x| x[0].minimum(x[1]) * x[1], [distinct(&[2, 3], 0.2, 20), distinct(&[2, 1], 0.33, 21)];
    relu: |t, x| x[0].relu() * x[0], [away_from_zero(&[2, 3], 0.1, 1.0, 22)];
    leaky_relu: |t, x| x[0].leaky_relu(0.1) * x[0], [away_from_zero(&[2, 3], 0.1, 1.0, 23)];
    sigmoid: |t, x| x[0].sigmoid(), [uniform(&[2, 3], -3.0, 3.0, 24)];
    tanh: |t, x| x[0].tanh(), [uniform(&[2, 3], -2.0, 2.0, 25)];
    softplus: |t, x| x[0].softplus(), [uniform(&[2, 3], -3.0, 3.0, 26)];
    square: |t, x| x[0].square(), [uniform(&[3], -1.0, 1.0, 27)];
}
