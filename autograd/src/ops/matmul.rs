//! Matrix products over the last two axes, batched over the leading ones.
//!
//! One op, `MatMul { ta, tb }`, computes `op(a) op(b)` where `op` swaps the last two axes of an operand whose
//! flag is set; the kernel reads transposed operands through strides, so neither `matmul`'s forward nor its
//! backward (`g b^T`, `a^T g`) materialises a transposed copy. Only the gradients that are needed are computed.

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

impl<'t, T: Float> Var<'t, T> {
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
