//! Shape ops: reshape, permute, broadcast and its adjoint sum_to, concat/stack, narrow and its adjoint pad.

use crate::{ops::contiguous, Op, Var};
use kernels::Float;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

struct Reshape;

impl<T: Float> Op<T> for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.reshape(&inputs[0].shape()))]
    }
}

struct Permute(Vec<usize>);

impl<T: Float> Op<T> for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inverse[p] = i;
        }
        vec![Some(g.permute(&inverse))]
    }
}

struct BroadcastTo;

impl<T: Float> Op<T> for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.sum_to(&inputs[0].shape()))]
    }
}

struct SumTo;

impl<T: Float> Op<T> for SumTo {
    fn name(&self) -> &'static str {
        "sum_to"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.broadcast_to(&inputs[0].shape()))]
    }
}

struct Concat(usize);

impl<T: Float> Op<T> for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let mut start = 0;
        inputs
            .iter()
            .map(|x| {
                let len = x.shape()[self.0];
                start += len;
                Some(g.narrow(self.0, start - len, len))
            })
            .collect()
    }
}

struct Narrow {
    axis: usize,
    start: usize,
}

impl<T: Float> Op<T> for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let full = inputs[0].shape()[self.axis];
        let len = g.shape()[self.axis];
        let mut pads = vec![(0, 0); g.ndim()];
        pads[self.axis] = (self.start, full - self.start - len);
        vec![Some(g.pad(&pads))]
    }
}

struct Pad(Vec<(usize, usize)>);

impl<T: Float> Op<T> for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let shape = inputs[0].shape();
        let mut out = g;
        for (axis, &(before, _)) in self.0.iter().enumerate() {
            if out.shape()[axis] != shape[axis] {
                out = out.narrow(axis, before, shape[axis]);
            }
        }
        vec![Some(out)]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The same elements (row-major order) in a new shape.
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        let x = self.value();
        if x.shape() == shape {
            return self;
        }
        let n: usize = shape.iter().product();
        assert_eq!(
            n,
            x.len(),
            "reshape: cannot reshape {:?} ({} elements) into {shape:?} ({n} elements)",
            x.shape(),
            x.len()
        );
        let v = x.as_standard_layout().into_owned().into_shape_with_order(IxDyn(shape)).expect("checked reshape");
        self.tape().record(v, Reshape, &[self])
    }

    /// Reorder the axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(self, perm: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        let mut seen = perm.to_vec();
        seen.sort_unstable();
        assert!(
            seen == (0..shape.len()).collect::<Vec<_>>(),
            "permute: {perm:?} is not a permutation of the axes of {shape:?}"
        );
        let v = self.value().view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned();
        self.tape().record(v, Permute(perm.to_vec()), &[self])
    }

    /// Swap two axes.
    pub fn transpose(self, a: usize, b: usize) -> Var<'t, T> {
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        assert!(
            a < perm.len() && b < perm.len(),
            "transpose: axes ({a}, {b}) out of range for shape {:?}",
            self.shape()
        );
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Insert a size-1 axis at `axis`.
    pub fn unsqueeze(self, axis: usize) -> Var<'t, T> {
        let mut shape = self.shape();
        assert!(axis <= shape.len(), "unsqueeze: axis {axis} out of range for shape {shape:?}");
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Remove the size-1 axis `axis`.
    pub fn squeeze(self, axis: usize) -> Var<'t, T> {
        let mut shape = self.shape();
        assert!(axis < shape.len() && shape[axis] == 1, "squeeze: axis {axis} of shape {shape:?} is not of size 1");
        shape.remove(axis);
        self.reshape(&shape)
    }

    /// Repeat along size-1 (or missing leading) axes to `shape`, as NumPy broadcasting does.
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        let x = self.value();
        if x.shape() == shape {
            return self;
        }
        if x.broadcast(IxDyn(shape)).is_none() {
            panic!("broadcast_to: cannot broadcast shape {:?} to {shape:?}", x.shape());
        }
        let padded: Vec<usize> =
            std::iter::repeat_n(1, shape.len() - x.ndim()).chain(x.shape().iter().copied()).collect();
        let data = kernels::elementwise::broadcast(&contiguous(&x), &padded, shape);
        let v = ArrayD::from_shape_vec(IxDyn(shape), data).expect("broadcast shape");
        self.tape().record(v, BroadcastTo, &[self])
    }

    /// Sum over the axes that broadcasting `shape` to this tensor's shape would have repeated: the adjoint of
    /// `broadcast_to(shape)`.
    pub fn sum_to(self, shape: &[usize]) -> Var<'t, T> {
        let x = self.value();
        if x.shape() == shape {
            return self;
        }
        let from = x.shape().to_vec();
        let lead = from.len().checked_sub(shape.len());
        let ok = lead.is_some_and(|lead| shape.iter().enumerate().all(|(i, &d)| d == from[lead + i] || d == 1));
        assert!(ok, "sum_to: shape {from:?} cannot be summed to {shape:?}");
        let lead = lead.unwrap();
        let axes: Vec<usize> =
            (0..from.len()).filter(|&a| a < lead || (shape[a - lead] == 1 && from[a] != 1)).collect();
        let data = kernels::elementwise::sum_axes(&contiguous(&x), &from, &axes);
        let v = ArrayD::from_shape_vec(IxDyn(shape), data).expect("sum_to shape");
        self.tape().record(v, SumTo, &[self])
    }

    /// The elements `start..start + len` along `axis`.
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Var<'t, T> {
        let x = self.value();
        assert!(
            axis < x.ndim() && start + len <= x.shape()[axis],
            "narrow: range {start}..{} along axis {axis} is out of bounds for shape {:?}",
            start + len,
            x.shape()
        );
        if len == x.shape()[axis] {
            return self;
        }
        let v = x.slice_axis(Axis(axis), Slice::from(start..start + len)).to_owned();
        self.tape().record(v, Narrow { axis, start }, &[self])
    }

    /// Zero padding: `pads[axis] = (before, after)` for every axis.
    pub fn pad(self, pads: &[(usize, usize)]) -> Var<'t, T> {
        let x = self.value();
        assert_eq!(
            pads.len(),
            x.ndim(),
            "pad: {} (before, after) pairs for a tensor of shape {:?}",
            pads.len(),
            x.shape()
        );
        if pads.iter().all(|&p| p == (0, 0)) {
            return self;
        }
        let shape: Vec<usize> = x.shape().iter().zip(pads).map(|(&d, &(b, a))| d + b + a).collect();
        let mut v = ArrayD::zeros(shape);
        let mut view = v.view_mut();
        for (axis, &(b, _)) in pads.iter().enumerate() {
            view.slice_axis_inplace(Axis(axis), Slice::from(b..b + x.shape()[axis]));
        }
        view.assign(&*x);
        self.tape().record(v, Pad(pads.to_vec()), &[self])
    }
}

/// Join tensors along an existing axis; all other axes must agree.
pub fn concat<'t, T: Float>(xs: &[Var<'t, T>], axis: usize) -> Var<'t, T> {
    assert!(!xs.is_empty(), "concat: no tensors given");
    let values: Vec<_> = xs.iter().map(|x| x.value()).collect();
    let first = values[0].shape().to_vec();
    for v in &values {
        let same = v.ndim() == first.len()
            && axis < first.len()
            && (0..first.len()).all(|i| i == axis || v.shape()[i] == first[i]);
        assert!(same, "concat: shapes {first:?} and {:?} do not match outside axis {axis}", v.shape());
    }
    let views: Vec<_> = values.iter().map(|v| v.view()).collect();
    let v = ndarray::concatenate(Axis(axis), &views).expect("checked concat");
    xs[0].tape().record(v, Concat(axis), xs)
}

/// Join tensors of one shape along a new axis.
pub fn stack<'t, T: Float>(xs: &[Var<'t, T>], axis: usize) -> Var<'t, T> {
    assert!(!xs.is_empty(), "stack: no tensors given");
    let shape = xs[0].shape();
    for x in xs {
        assert_eq!(x.shape(), shape, "stack: shapes {shape:?} and {:?} differ", x.shape());
    }
    let expanded: Vec<_> = xs.iter().map(|x| x.unsqueeze(axis)).collect();
    concat(&expanded, axis)
}
