//! Matrix products over the last two axes, batched over the leading ones.

use crate::{Op, Var};
use kernels::Float;

struct MatMul;

impl<T: Float> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _y: Var<'t, T>, g: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (a, b) = (inputs[0], inputs[1]);
        let da = g.matmul(b.t()).sum_to(&a.shape());
        let db = a.t().matmul(g).sum_to(&b.shape());
        vec![Some(da), Some(db)]
    }
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
        self.tape().record(v, MatMul, &[self, other])
    }

    /// Swap the last two axes.
    pub fn t(self) -> Var<'t, T> {
        let n = self.ndim();
        assert!(n >= 2, "t: tensor of shape {:?} has fewer than two axes", self.shape());
        self.transpose(n - 2, n - 1)
    }
}
