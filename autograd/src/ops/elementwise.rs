//! Element-wise ops: unary maps, scalar maps and broadcasting binary ops.
//!
//! Each backward is a product of the incoming gradient with a derivative written in differentiable ops
//! (`exp`: `g * y`, `tanh`: `g * (1 - y^2)`), or with a constant mask where the derivative is piecewise
//! constant (`relu`, `abs`, `clamp`, `maximum`), whose own derivative is zero almost everywhere.

use super::{contiguous, indicator};
use crate::{Op, Var};
use kernels::elementwise as ew;
use kernels::Float;
use ndarray::{ArrayD, IxDyn};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `op` applied to every element, one specialised (vectorised where the maths allows) loop per op.
fn unary_values<T: Float>(op: Unary<T>, x: &ArrayD<T>) -> ArrayD<T> {
    let xs = contiguous(x);
    let zero = T::zero();
    let out = match op {
        Unary::Neg => ew::map_new(&xs, |v| -v),
        Unary::Exp => ew::map_new(&xs, |v| v.exp_v()),
        Unary::Log => ew::map_new(&xs, |v| v.ln()),
        Unary::Sqrt => ew::map_new(&xs, |v| v.sqrt()),
        Unary::Abs => ew::map_new(&xs, |v| v.abs()),
        // NaN fails every comparison: these forms pass it through, as PyTorch does, rather than turning it into
        // a number (`v.max(zero)` would give 0 for NaN).
        Unary::Relu => ew::map_new(&xs, |v| if v <= zero { zero } else { v }),
        Unary::LeakyRelu(s) => ew::map_new(&xs, |v| if v > zero { v } else { v * s }),
        Unary::Sigmoid => ew::map_new(&xs, |v| v.sigmoid_v()),
        Unary::Tanh => ew::map_new(&xs, |v| v.tanh_v()),
        Unary::Softplus => ew::map_new(&xs, |v| v.max(zero) + (-v.abs()).exp().ln_1p()),
        Unary::Powf(p) => ew::map_new(&xs, |v| v.powf(p)),
        Unary::Clamp(lo, hi) => ew::map_new(&xs, |v| {
            if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            }
        }),
        Unary::AddScalar(c) => ew::map_new(&xs, |v| v + c),
        Unary::MulScalar(c) => ew::map_new(&xs, |v| v * c),
    };
    ArrayD::from_shape_vec(x.raw_dim(), out).expect("same shape")
}

/// How a binary op's operands line up with its output, for the fast loops.
enum Layout {
    /// Both have the output's elements.
    Same,
    /// One operand has the output's elements; the other repeats one row of `inner` values (`col` false) or
    /// has one value per row of `inner` (`col` true), its values repeating after its length.
    Broadcast { inner: usize, col: bool },
}

/// The layout of an operand of shape `small` against the output `shape`, if one of the fast ones.
fn layout(small: &[usize], shape: &[usize]) -> Option<Layout> {
    if small == shape {
        return Some(Layout::Same);
    }
    let n = shape.len();
    let padded: Vec<usize> = std::iter::repeat_n(1, n - small.len()).chain(small.iter().copied()).collect();
    let len: usize = small.iter().product();
    let total: usize = shape.iter().product();
    if len == total {
        return Some(Layout::Same);
    }
    if len == 1 {
        return Some(Layout::Broadcast { inner: total.max(1), col: true });
    }
    // A row: leading ones, then the output's trailing axes.
    let k = padded.iter().position(|&d| d != 1).unwrap_or(n);
    if padded[k..] == shape[k..] {
        return Some(Layout::Broadcast { inner: len, col: false });
    }
    // A column (the output's leading axes, then ones) or, more generally, the output's middle axes between
    // ones (a per-channel value against `[N, C, H, W]`): one value per row of `inner`, repeating every `len`
    // rows.
    let j = padded.iter().rposition(|&d| d != 1).map_or(0, |j| j + 1);
    if padded[k..j] == shape[k..j] {
        return Some(Layout::Broadcast { inner: shape[j..].iter().product::<usize>().max(1), col: true });
    }
    None
}

/// `f(a, b)` with NumPy broadcasting to `shape`: plain, row and column broadcasts run as flat loops, anything
/// else through ndarray's general broadcasting.
fn binary_values<T: Float, F: Fn(T, T) -> T + Sync>(a: &ArrayD<T>, b: &ArrayD<T>, shape: &[usize], f: F) -> ArrayD<T> {
    let total: usize = shape.iter().product();
    let (la, lb) = (layout(a.shape(), shape), layout(b.shape(), shape));
    let out = match (la, lb) {
        (Some(Layout::Same), Some(Layout::Same)) => ew::zip_new(&contiguous(a), &contiguous(b), f),
        (Some(Layout::Same), Some(Layout::Broadcast { inner, col })) if total > 0 => {
            ew::broadcast_new(&contiguous(a), &contiguous(b), inner, col, false, f)
        }
        (Some(Layout::Broadcast { inner, col }), Some(Layout::Same)) if total > 0 => {
            ew::broadcast_new(&contiguous(b), &contiguous(a), inner, col, true, f)
        }
        _ => {
            let a = a.broadcast(shape).expect("checked broadcast");
            let b = b.broadcast(shape).expect("checked broadcast");
            return ndarray::Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y));
        }
    };
    ArrayD::from_shape_vec(IxDyn(shape), out).expect("broadcast shape")
}

/// The shape two shapes broadcast to (NumPy rules), or a panic naming the op and both shapes.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => panic!("{op}: shapes {a:?} and {b:?} cannot be broadcast together"),
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Unary<T> {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Relu,
    LeakyRelu(T),
    Sigmoid,
    Tanh,
    Softplus,
    Powf(T),
    Clamp(T, T),
    AddScalar(T),
    MulScalar(T),
}

impl<T: Float> Unary<T> {
    fn name(&self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Relu => "relu",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Softplus => "softplus",
            Unary::Powf(_) => "powf",
            Unary::Clamp(..) => "clamp",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
        }
    }
}

impl<T: Float> Op<T> for Unary<T> {
    fn name(&self) -> &'static str {
        Unary::name(self)
    }

    fn backward<'t>(&self, inputs: &[Var<'t, T>], y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        if !g.tape().is_recording() {
            // Not differentiated again: one fused loop instead of the two to four ops below.
            if let Some(dx) = self.fused_backward(x, y, g) {
                return vec![Some(dx)];
            }
        }
        let (zero, one) = (T::zero(), T::one());
        let dx = match *self {
            Unary::Neg => -g,
            Unary::Exp => g * y,
            Unary::Log => g / x,
            Unary::Sqrt => g / (y * T::of(2.0)),
            Unary::Abs => g * x.map_const(|v| indicator::<T>(v > zero) - indicator::<T>(v < zero)),
            Unary::Relu => g * x.map_const(|v| if v > zero { one } else { zero }),
            Unary::LeakyRelu(s) => g * x.map_const(|v| if v > zero { one } else { s }),
            Unary::Sigmoid => g * y * (-y).add_scalar(one),
            Unary::Tanh => g * (-(y * y)).add_scalar(one),
            Unary::Softplus => g * x.sigmoid(),
            Unary::Powf(p) => g * x.powf(p - one) * p,
            Unary::Clamp(lo, hi) => g * x.map_const(|v| if v >= lo && v <= hi { one } else { zero }),
            Unary::AddScalar(_) => g,
            Unary::MulScalar(c) => g * c,
        };
        vec![Some(dx)]
    }
}

impl<T: Float> Unary<T> {
    /// The backward rule as a single loop over the incoming gradient and `x` (or `y`), computing the same
    /// expression as the composed rule in `backward`, for a backward pass that is not recorded. `None` where
    /// the composed rule is a single op anyway.
    fn fused_backward<'t>(&self, x: Var<'t, T>, y: Var<'t, T>, g: Var<'t, T>) -> Option<Var<'t, T>> {
        let (zero, one, two) = (T::zero(), T::one(), T::of(2.0));
        let (gv, xv, yv) = (g.value(), x.value(), y.value());
        let (gs, xs, ys) = (contiguous(&gv), contiguous(&xv), contiguous(&yv));
        let out = match *self {
            Unary::Sqrt => ew::zip_new(&gs, &ys, |g, y| g / (y * two)),
            Unary::Abs => ew::zip_new(&gs, &xs, |g, v| g * (indicator::<T>(v > zero) - indicator::<T>(v < zero))),
            Unary::Relu => ew::zip_new(&gs, &xs, |g, v| g * if v > zero { one } else { zero }),
            Unary::LeakyRelu(s) => ew::zip_new(&gs, &xs, |g, v| g * if v > zero { one } else { s }),
            Unary::Sigmoid => ew::zip_new(&gs, &ys, |g, y| g * y * (-y + one)),
            Unary::Tanh => ew::zip_new(&gs, &ys, |g, y| g * (-(y * y) + one)),
            Unary::Softplus => ew::zip_new(&gs, &xs, |g, v| g * v.sigmoid_v()),
            Unary::Powf(p) => ew::zip_new(&gs, &xs, |g, v| g * v.powf(p - one) * p),
            Unary::Clamp(lo, hi) => ew::zip_new(&gs, &xs, |g, v| g * if v >= lo && v <= hi { one } else { zero }),
            _ => return None,
        };
        Some(g.constant(ArrayD::from_shape_vec(gv.raw_dim(), out).expect("gradient shape")))
    }
}

#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

impl<T: Float> Op<T> for Binary {
    fn name(&self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
        }
    }

    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _y: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let (na, nb) = (needed[0], needed[1]);
        let (da, db) = match self {
            Binary::Add => (na.then_some(g), nb.then_some(g)),
            Binary::Sub => (na.then_some(g), nb.then(|| -g)),
            Binary::Mul => (na.then(|| g * b), nb.then(|| g * a)),
            Binary::Div => (na.then(|| g / b), nb.then(|| -(g * a) / (b * b))),
            Binary::Maximum | Binary::Minimum => {
                // Ties send the gradient to `a`.
                let pick_a = matches!(self, Binary::Maximum);
                let (av, bv) = (a.value(), b.value());
                let mask = ndarray::Zip::from(&av.broadcast(g.shape()).expect("broadcast"))
                    .and(&bv.broadcast(g.shape()).expect("broadcast"))
                    .map_collect(|&x, &y| indicator::<T>((x >= y) == pick_a || x == y));
                let mask = g.constant(mask);
                (na.then(|| g * mask), nb.then(|| g * (-mask).add_scalar(T::one())))
            }
        };
        vec![da.map(|d| d.sum_to(&a.shape())), db.map(|d| d.sum_to(&b.shape()))]
    }
}

impl<'t, T: Float> Var<'t, T> {
    fn unary(self, op: Unary<T>) -> Var<'t, T> {
        let x = self.value();
        let v = unary_values(op, &x);
        self.tape().record(v, op, &[self])
    }

    fn binary(self, other: Var<'t, T>, op: Binary) -> Var<'t, T> {
        let (a, b) = (self.value(), other.value());
        let name = <Binary as Op<T>>::name(&op);
        let shape = broadcast_shape(name, a.shape(), b.shape());
        let v = match op {
            Binary::Add => binary_values(&a, &b, &shape, |x, y| x + y),
            Binary::Sub => binary_values(&a, &b, &shape, |x, y| x - y),
            Binary::Mul => binary_values(&a, &b, &shape, |x, y| x * y),
            Binary::Div => binary_values(&a, &b, &shape, |x, y| x / y),
            Binary::Maximum => binary_values(&a, &b, &shape, nan_max),
            Binary::Minimum => binary_values(&a, &b, &shape, nan_min),
        };
        self.tape().record(v, op, &[self, other])
    }

    /// A constant computed element-wise from this node's value (masks and signs for backward rules).
    pub fn map_const(&self, f: impl Fn(T) -> T + Sync) -> Var<'t, T> {
        let x = self.value();
        let v = ArrayD::from_shape_vec(x.raw_dim(), ew::map_new(&contiguous(&x), f)).expect("same shape");
        self.constant(v)
    }

    pub fn exp(self) -> Var<'t, T> {
        self.unary(Unary::Exp)
    }
    pub fn log(self) -> Var<'t, T> {
        self.unary(Unary::Log)
    }
    pub fn sqrt(self) -> Var<'t, T> {
        self.unary(Unary::Sqrt)
    }
    pub fn abs(self) -> Var<'t, T> {
        self.unary(Unary::Abs)
    }
    pub fn relu(self) -> Var<'t, T> {
        self.unary(Unary::Relu)
    }
    /// `x` for `x > 0`, `slope * x` otherwise.
    pub fn leaky_relu(self, slope: T) -> Var<'t, T> {
        self.unary(Unary::LeakyRelu(slope))
    }
    pub fn sigmoid(self) -> Var<'t, T> {
        self.unary(Unary::Sigmoid)
    }
    pub fn tanh(self) -> Var<'t, T> {
        self.unary(Unary::Tanh)
    }
    /// `log(1 + exp(x))`, computed stably.
    pub fn softplus(self) -> Var<'t, T> {
        self.unary(Unary::Softplus)
    }
    /// `x^p` for a scalar exponent `p`.
    pub fn powf(self, p: T) -> Var<'t, T> {
        self.unary(Unary::Powf(p))
    }
    /// Limit every element to `[lo, hi]`; the gradient passes where `lo <= x <= hi`.
    pub fn clamp(self, lo: T, hi: T) -> Var<'t, T> {
        assert!(lo <= hi, "clamp: lower bound {lo} is above upper bound {hi}");
        self.unary(Unary::Clamp(lo, hi))
    }
    pub fn add_scalar(self, c: T) -> Var<'t, T> {
        self.unary(Unary::AddScalar(c))
    }
    pub fn mul_scalar(self, c: T) -> Var<'t, T> {
        self.unary(Unary::MulScalar(c))
    }
    /// Element-wise maximum with broadcasting (ties pass the gradient to `self`).
    pub fn maximum(self, other: Var<'t, T>) -> Var<'t, T> {
        self.binary(other, Binary::Maximum)
    }
    /// Element-wise minimum with broadcasting (ties pass the gradient to `self`).
    pub fn minimum(self, other: Var<'t, T>) -> Var<'t, T> {
        self.binary(other, Binary::Minimum)
    }
    /// Element-wise square.
    pub fn square(self) -> Var<'t, T> {
        self * self
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $kind:ident, $scalar:expr) => {
        impl<'t, T: Float> $trait for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                self.binary(rhs, Binary::$kind)
            }
        }
        impl<'t, T: Float> $trait<T> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $method(self, rhs: T) -> Var<'t, T> {
                #[allow(clippy::redundant_closure_call)]
                ($scalar)(self, rhs)
            }
        }
    };
}

binary_operator!(Add, add, Add, |x: Var<'t, T>, c| x.add_scalar(c));
binary_operator!(Sub, sub, Sub, |x: Var<'t, T>, c: T| x.add_scalar(-c));
binary_operator!(Mul, mul, Mul, |x: Var<'t, T>, c| x.mul_scalar(c));
binary_operator!(Div, div, Div, |x: Var<'t, T>, c: T| x.mul_scalar(T::one() / c));

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    fn neg(self) -> Var<'t, T> {
        self.unary(Unary::Neg)
    }
}

/// 1 where `b` holds, 0 elsewhere.
/// The larger of `x` and `y`, NaN if either is NaN (`f32::max` would return the other one); `x` on ties.
#[inline(always)]
pub fn nan_max<T: Float>(x: T, y: T) -> T {
    if x >= y || x.is_nan() {
        x
    } else {
        y
    }
}

/// The smaller of `x` and `y`, NaN if either is NaN; `x` on ties.
#[inline(always)]
pub fn nan_min<T: Float>(x: T, y: T) -> T {
    if x <= y || x.is_nan() {
        x
    } else {
        y
    }
}
