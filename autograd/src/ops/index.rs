//! Indexing ops and their adjoints: `index_select` / `index_add` along an axis, `gather` / `scatter_add` by
//! an index tensor. Each is the other's backward, so both differentiate to any order. Indices are constants.

use crate::{Op, Var};
use kernels::Float;
use ndarray::{ArrayD, Axis};
use std::rc::Rc;

struct IndexSelect {
    axis: usize,
    index: Rc<Vec<usize>>,
}

impl<T: Float> Op<T> for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let size = inputs[0].shape()[self.axis];
        vec![Some(g.index_add(self.axis, &self.index, size))]
    }
}

struct IndexAdd {
    axis: usize,
    index: Rc<Vec<usize>>,
}

impl<T: Float> Op<T> for IndexAdd {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.index_select(self.axis, &self.index))]
    }
}

struct Gather {
    axis: usize,
    index: Rc<ArrayD<usize>>,
}

impl<T: Float> Op<T> for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.scatter_add_rc(self.axis, self.index.clone(), &inputs[0].shape()))]
    }
}

struct ScatterAdd {
    axis: usize,
    index: Rc<ArrayD<usize>>,
}

impl<T: Float> Op<T> for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(g.gather_rc(self.axis, self.index.clone()))]
    }
}

/// Check that `index` addresses `shape` along `axis` (same rank; other axes equal) and is in range.
fn check_index(op: &str, axis: usize, index: &ArrayD<usize>, shape: &[usize], other: &[usize]) {
    let ok = index.ndim() == shape.len()
        && axis < shape.len()
        && (0..shape.len()).all(|i| i == axis || index.shape()[i] == other[i]);
    assert!(ok, "{op}: index of shape {:?} does not fit a tensor of shape {other:?} along axis {axis}", index.shape());
    if let Some(&i) = index.iter().find(|&&i| i >= shape[axis]) {
        panic!("{op}: index {i} is out of range for axis {axis} of shape {shape:?}");
    }
}

/// For every position `p` of `index`, call `f(p_flat, q_flat)` where `q` is `p` with its `axis` coordinate
/// replaced by `index[p]`, flattened in a contiguous tensor of shape `shape`.
fn for_each_indexed(axis: usize, index: &ArrayD<usize>, shape: &[usize], mut f: impl FnMut(usize, usize)) {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    for (p, (coords, &k)) in index.indexed_iter().enumerate() {
        let q: usize = (0..shape.len()).map(|i| if i == axis { k } else { coords[i] } * strides[i]).sum();
        f(p, q);
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The slices `index[0], index[1], ...` along `axis`, stacked along it (indices may repeat).
    pub fn index_select(self, axis: usize, index: &[usize]) -> Var<'t, T> {
        let x = self.value();
        assert!(axis < x.ndim(), "index_select: axis {axis} out of range for shape {:?}", x.shape());
        if let Some(&i) = index.iter().find(|&&i| i >= x.shape()[axis]) {
            panic!("index_select: index {i} is out of range for axis {axis} of shape {:?}", x.shape());
        }
        let v = x.select(Axis(axis), index);
        self.tape().record(v, IndexSelect { axis, index: Rc::new(index.to_vec()) }, &[self])
    }

    /// A zero tensor with `size` entries along `axis` into which slice `i` of `self` is added at `index[i]`:
    /// the adjoint of `index_select`.
    pub fn index_add(self, axis: usize, index: &[usize], size: usize) -> Var<'t, T> {
        let x = self.value();
        assert!(
            axis < x.ndim() && x.shape()[axis] == index.len(),
            "index_add: {} indices for axis {axis} of shape {:?}",
            index.len(),
            x.shape()
        );
        if let Some(&i) = index.iter().find(|&&i| i >= size) {
            panic!("index_add: index {i} is out of range for size {size}");
        }
        let mut shape = x.shape().to_vec();
        shape[axis] = size;
        let mut v = ArrayD::zeros(shape);
        for (src, &dst) in x.axis_iter(Axis(axis)).zip(index) {
            let mut row = v.index_axis_mut(Axis(axis), dst);
            row += &src;
        }
        self.tape().record(v, IndexAdd { axis, index: Rc::new(index.to_vec()) }, &[self])
    }

    /// `out[p] = self[p with axis coordinate index[p]]`; `index` has this tensor's shape except along `axis`.
    pub fn gather(self, axis: usize, index: &ArrayD<usize>) -> Var<'t, T> {
        self.gather_rc(axis, Rc::new(index.clone()))
    }

    fn gather_rc(self, axis: usize, index: Rc<ArrayD<usize>>) -> Var<'t, T> {
        let x = self.value();
        check_index("gather", axis, &index, x.shape(), x.shape());
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("contiguous");
        let mut out = Vec::with_capacity(index.len());
        for_each_indexed(axis, &index, x.shape(), |_, q| out.push(xs[q]));
        let v = ArrayD::from_shape_vec(index.shape(), out).expect("gather shape");
        self.tape().record(v, Gather { axis, index }, &[self])
    }

    /// A zero tensor of `shape` into which `self[p]` is added at `p` with its `axis` coordinate replaced by
    /// `index[p]`: the adjoint of `gather`.
    pub fn scatter_add(self, axis: usize, index: &ArrayD<usize>, shape: &[usize]) -> Var<'t, T> {
        self.scatter_add_rc(axis, Rc::new(index.clone()), shape)
    }

    fn scatter_add_rc(self, axis: usize, index: Rc<ArrayD<usize>>, shape: &[usize]) -> Var<'t, T> {
        let x = self.value();
        assert_eq!(
            x.shape(),
            index.shape(),
            "scatter_add: source of shape {:?} but index of shape {:?}",
            x.shape(),
            index.shape()
        );
        check_index("scatter_add", axis, &index, shape, shape);
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("contiguous");
        let mut out = vec![T::zero(); shape.iter().product()];
        for_each_indexed(axis, &index, shape, |p, q| out[q] += xs[p]);
        let v = ArrayD::from_shape_vec(shape, out).expect("scatter shape");
        self.tape().record(v, ScatterAdd { axis, index }, &[self])
    }
}
