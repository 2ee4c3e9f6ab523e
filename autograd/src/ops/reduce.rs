//! Reductions over axes: sum, mean, max and logsumexp, with or without the reduced axes kept.

use crate::{
    ops::{contiguous, indicator},
    Op, Var,
};
use kernels::Float;
use ndarray::{ArrayD, Axis};

/// Normalise and validate the axes of a reduction over a tensor of rank `ndim`.
pub(crate) fn check_axes(op: &str, axes: &[usize], shape: &[usize]) -> Vec<usize> {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    axes.dedup();
    if let Some(&a) = axes.iter().find(|&&a| a >= shape.len()) {
        panic!("{op}: axis {a} is out of range for shape {shape:?}");
    }
    axes
}

/// The shape after reducing `axes`, keeping them as 1 or dropping them.
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

fn reduce<T: Float>(
    x: &ArrayD<T>,
    axes: &[usize],
    keepdim: bool,
    f: impl Fn(&ArrayD<T>, Axis) -> ArrayD<T>,
) -> ArrayD<T> {
    let mut out = x.clone();
    for &a in axes.iter().rev() {
        out = f(&out, Axis(a));
        if keepdim {
            out.insert_axis_inplace(Axis(a));
        }
    }
    out
}

struct Sum {
    axes: Vec<usize>,
}

impl<T: Float> Op<T> for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let shape = inputs[0].shape();
        let kept = g.reshape(&reduced_shape(&shape, &self.axes, true));
        vec![Some(kept.broadcast_to(&shape))]
    }
}

struct Max {
    axes: Vec<usize>,
}

impl<T: Float> Op<T> for Max {
    fn name(&self) -> &'static str {
        "max"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        // The gradient goes to the maximal elements, shared equally among ties: a constant selection.
        let x = inputs[0];
        let shape = x.shape();
        let kept = reduced_shape(&shape, &self.axes, true);
        let yv = y.value();
        let yv = yv.view().into_shape_with_order(kept.clone()).expect("kept shape");
        let xv = x.value();
        let hit = ndarray::Zip::from(&*xv)
            .and(&yv.broadcast(shape.clone()).expect("broadcast"))
            .map_collect(|&a, &m| indicator::<T>(a == m));
        let count = reduce(&hit, &self.axes, true, |a, ax| a.sum_axis(ax));
        let select = g.constant(&hit / &count);
        vec![Some(g.reshape(&kept).broadcast_to(&shape) * select)]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Sum over `axes`; `keepdim` keeps them as size-1 axes.
    pub fn sum_axes(self, axes: &[usize], keepdim: bool) -> Var<'t, T> {
        let x = self.value();
        let axes = check_axes("sum", axes, x.shape());
        let data = kernels::elementwise::sum_axes(&contiguous(&x), x.shape(), &axes);
        let v = ArrayD::from_shape_vec(reduced_shape(x.shape(), &axes, keepdim), data).expect("reduced shape");
        self.tape().record(v, Sum { axes }, &[self])
    }

    /// Sum of all elements, as a 0-d tensor.
    pub fn sum(self) -> Var<'t, T> {
        let all: Vec<usize> = (0..self.ndim()).collect();
        self.sum_axes(&all, false)
    }

    /// Mean over `axes`.
    pub fn mean_axes(self, axes: &[usize], keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let axes = check_axes("mean", axes, &shape);
        let n: usize = axes.iter().map(|&a| shape[a]).product();
        self.sum_axes(&axes, keepdim) * (T::one() / T::of_usize(n.max(1)))
    }

    /// Mean of all elements, as a 0-d tensor.
    pub fn mean(self) -> Var<'t, T> {
        let all: Vec<usize> = (0..self.ndim()).collect();
        self.mean_axes(&all, false)
    }

    /// Maximum over `axes` (the gradient is shared equally among tied maxima).
    pub fn max_axes(self, axes: &[usize], keepdim: bool) -> Var<'t, T> {
        let axes = check_axes("max", axes, &self.shape());
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] == 0) {
            panic!("max: axis {a} of shape {:?} is empty", self.shape());
        }
        let v = reduce(&self.value(), &axes, keepdim, |a, ax| {
            a.fold_axis(ax, T::neg_infinity(), |&m, &x| {
                // NaN propagates (as PyTorch's amax): once the running maximum is NaN it stays NaN.
                if m.is_nan() {
                    m
                } else {
                    crate::ops::elementwise::nan_max(x, m)
                }
            })
        });
        self.tape().record(v, Max { axes }, &[self])
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably by shifting by the (constant) maximum.
    pub fn logsumexp(self, axes: &[usize], keepdim: bool) -> Var<'t, T> {
        let m = self.max_axes(axes, true).detach();
        let m = m.constant(m.value().mapv(|v| if v.is_finite() { v } else { T::zero() }));
        let s = (self - m).exp().sum_axes(axes, true).log() + m;
        if keepdim {
            s
        } else {
            let shape = reduced_shape(&self.shape(), &check_axes("logsumexp", axes, &self.shape()), false);
            s.reshape(&shape)
        }
    }
}
