//! Matrix products over the last two axes, batched over the leading ones.
//!
//! One op, `MatMul { ta, tb }`, computes `op(a) op(b)` where `op` swaps the last two axes of an operand whose
//! flag is set; the kernel reads transposed operands through strides, so neither `matmul`'s forward nor its
//! backward (`g b^T`, `a^T g`) materialises a transposed copy. Only the gradients that are needed are computed.
//! `linear` is a layer's `x W^T + b` as one op: the bias is written into the output and the product added to it
//! by the GEMM (as PyTorch's `addmm`), instead of a product followed by a broadcast addition.

use crate::{Op, Var};
use kernels::Float;

struct MatMul {
    ta: bool,
    tb: bool,
}

impl<T: Float> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _y: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        // C = op(A) op(B): d op(A) = G op(B)^T and d op(B) = op(A)^T G, transposed back where A (or B) was.
        let da = needed[0].then(|| {
            match (self.ta, self.tb) {
                (false, false) => product(g, false, b, true),
                (false, true) => product(g, false, b, false),
                (true, false) => product(b, false, g, true),
                (true, true) => product(b, true, g, true),
            }
            .sum_to(&a.shape())
        });
        let db = needed[1].then(|| {
            match (self.ta, self.tb) {
                (false, false) => product(a, true, g, false),
                (false, true) => product(g, true, a, false),
                (true, false) => product(a, false, g, false),
                (true, true) => product(g, true, a, true),
            }
            .sum_to(&b.shape())
        });
        vec![da, db]
    }
}

/// `op(a) op(b)` recorded as one op, where `op` swaps the last two axes of an operand whose flag is set
/// (without copying it). Shapes are the caller's to check.
pub(crate) fn product<'t, T: Float>(a: Var<'t, T>, ta: bool, b: Var<'t, T>, tb: bool) -> Var<'t, T> {
    let (av, bv) = (a.value(), b.value());
    let v = kernels::gemm::matmul_t(av.view(), ta, bv.view(), tb);
    a.tape().record(v, MatMul { ta, tb }, &[a, b])
}

struct Linear;

impl<T: Float> Op<T> for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn backward_needed<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _y: Var<'t, T>,
        g: Var<'t, T>,
        needed: &[bool],
    ) -> Vec<Option<Var<'t, T>>> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        // y = x W^T + b: dx = G W, dW = G^T x, db = the column sums of G.
        let dx = needed[0].then(|| product(g, false, w, false));
        let dw = needed[1].then(|| product(g, true, x, false));
        let db = needed[2].then(|| g.sum_to(&b.shape()));
        vec![dx, dw, db]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// A linear layer on rows: `self [n, in] @ w [out, in]^T + b [out]`, recorded as one op.
    pub fn linear(self, w: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
        let (xv, wv, bv) = (self.value(), w.value(), b.value());
        let fits = xv.ndim() == 2
            && wv.ndim() == 2
            && bv.ndim() == 1
            && xv.shape()[1] == wv.shape()[1]
            && bv.shape()[0] == wv.shape()[0];
        assert!(fits, "linear: input {:?}, weight {:?} and bias {:?} do not match", xv.shape(), wv.shape(), bv.shape());
        let (rows, out) = (xv.shape()[0], wv.shape()[0]);
        let bias = bv.as_slice().expect("tape values are contiguous");
        let mut y = ndarray::Array2::from_shape_vec((rows, out), bias.repeat(rows)).expect("rows x out");
        let x2 = xv.view().into_dimensionality::<ndarray::Ix2>().expect("2-D");
        let w2 = wv.view().into_dimensionality::<ndarray::Ix2>().expect("2-D");
        kernels::gemm::gemm_into(T::one(), x2, w2.t(), T::one(), y.view_mut());
        self.tape().record(y.into_dyn(), Linear, &[self, w, b])
    }

    /// `self @ other` over the last two axes. Both 2-D; or both with the same leading (batch) axes; or one
    /// side 2-D and shared across the other's batch.
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        let (a, b) = (self.value(), other.value());
        let (sa, sb) = (a.shape(), b.shape());
        let fits = sa.len() >= 2
            && sb.len() >= 2
            && sa[sa.len() - 1] == sb[sb.len() - 2]
            && (sa.len() == 2 || sb.len() == 2 || sa[..sa.len() - 2] == sb[..sb.len() - 2]);
        assert!(fits, "matmul: shapes {sa:?} and {sb:?} do not match");
        let v = kernels::gemm::matmul(a.view(), b.view());
        self.tape().record(v, MatMul { ta: false, tb: false }, &[self, other])
    }

    /// `self @ other^T` over the last two axes, `other` read transposed through strides (no copy): a linear
    /// layer's `x W^T`. The same shapes as `matmul` once `other`'s last two axes are swapped.
    pub fn matmul_nt(self, other: Var<'t, T>) -> Var<'t, T> {
        let (sa, sb) = (self.shape(), other.shape());
        let fits = sa.len() >= 2
            && sb.len() >= 2
            && sa[sa.len() - 1] == sb[sb.len() - 1]
            && (sa.len() == 2 || sb.len() == 2 || sa[..sa.len() - 2] == sb[..sb.len() - 2]);
        assert!(fits, "matmul_nt: shapes {sa:?} and {sb:?} (transposed) do not match");
        product(self, false, other, true)
    }

    /// Swap the last two axes.
    pub fn t(self) -> Var<'t, T> {
        let n = self.ndim();
        assert!(n >= 2, "t: tensor of shape {:?} has fewer than two axes", self.shape());
        self.transpose(n - 2, n - 1)
    }
}
