//! One direction of an LSTM over a whole sequence, forward and backward through time, with the point-wise gate
//! math fused (one pass per step) and one GEMM per step for all four gates.
//!
//! Layouts (row-major): `proj [B, T, 4H]` is the input projection of every step with both biases (one GEMM for
//! all steps, done by the caller), gate order `(i, f, g, o)`; `w_hh [4H, H]`; states `[B, H]`. The result
//! `s [B, T, 2H]` holds, for every step `t`, the state `(h, c)` after step `t`; a sequence `b` only takes
//! steps `t < lengths[b]` and carries its state unchanged through the others. Steps run from `0` to `T-1`, or
//! from `T-1` down to `0` when `reverse`.

use crate::gemm::{gemm_into, gemm_packed, gemm_serial, pack_rhs};
use crate::Float;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Sizes and step order of one direction.
#[derive(Clone, Debug)]
pub struct Seq {
    pub batch: usize,
    pub steps: usize,
    pub hidden: usize,
    pub lengths: Vec<usize>,
    pub reverse: bool,
}

/// `c = a b + beta c`, on this thread when `serial`.
fn product<T: Float>(serial: bool, a: ArrayView2<T>, b: ArrayView2<T>, beta: T, c: ArrayViewMut2<T>) {
    if serial {
        gemm_serial(T::one(), a, b, beta, c);
    } else {
        gemm_into(T::one(), a, b, beta, c);
    }
}

/// One step's product with the recurrent weight: with the operand packed once, on this thread, unless the
/// product is large enough to split across threads (and directions are not already running in parallel).
fn step_product<T: Float>(
    serial: bool,
    a: ArrayView2<T>,
    (packed, plain): (&crate::gemm::PackedRhs<T>, ArrayView2<T>),
    beta: T,
    c: ArrayViewMut2<T>,
) {
    let flops = a.dim().0 * a.dim().1 * plain.dim().1;
    if !serial && flops >= 1 << 23 && rayon::current_num_threads() > 1 {
        gemm_into(T::one(), a, plain, beta, c);
    } else {
        gemm_packed(T::one(), a, packed, beta, c);
    }
}

impl Seq {
    /// The steps in processing order.
    fn order(&self) -> Vec<usize> {
        if self.reverse {
            (0..self.steps).rev().collect()
        } else {
            (0..self.steps).collect()
        }
    }
}

multiversion! {
    /// One row of a step: gate pre-activations `pre [4H]` and the state `h`, `c [H]` (updated in place), saving
    /// the activations in `act [4H]`.
    fn cell_forward<T: Float>(pre: &[T], act: &mut [T], h: &mut [T], c: &mut [T]) {
        let n = h.len();
        let (pi, rest) = pre.split_at(n);
        let (pf, rest) = rest.split_at(n);
        let (pg, po) = rest.split_at(n);
        let (ai, rest) = act.split_at_mut(n);
        let (af, rest) = rest.split_at_mut(n);
        let (ag, ao) = rest.split_at_mut(n);
        for j in 0..n {
            let (i, f, g, o) = (pi[j].sigmoid_v(), pf[j].sigmoid_v(), pg[j].tanh_v(), po[j].sigmoid_v());
            let cj = f * c[j] + i * g;
            c[j] = cj;
            h[j] = o * cj.tanh_v();
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
        }
    }
}

multiversion! {
    /// One row of the backward pass through a step: from the activations `act [4H]`, the new cell state `c`,
    /// the previous one `c_prev`, the output gradients `gh`, `gc` and the gradients arriving from the later
    /// step, `dh_next` and `dc_next` (the latter replaced by the gradient of `c_prev`), the gate gradients `dg`.
    fn cell_backward<T: Float>(
        act: &[T],
        c: &[T],
        c_prev: &[T],
        gh: &[T],
        gc: &[T],
        dh_next: &[T],
        dc_next: &mut [T],
        dg: &mut [T]
    ) {
        let n = c.len();
        let one = T::one();
        let (ai, rest) = act.split_at(n);
        let (af, rest) = rest.split_at(n);
        let (ag, ao) = rest.split_at(n);
        let (di, rest) = dg.split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dgg, dgo) = rest.split_at_mut(n);
        for j in 0..n {
            let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
            let dh = gh[j] + dh_next[j];
            let tc = c[j].tanh_v();
            let dc = gc[j] + dc_next[j] + dh * o * (one - tc * tc);
            di[j] = dc * g * i * (one - i);
            df[j] = dc * c_prev[j] * f * (one - f);
            dgg[j] = dc * i * (one - g * g);
            dgo[j] = dh * tc * o * (one - o);
            dc_next[j] = dc * f;
        }
    }
}

/// The forward pass: returns `s [B, T, 2H]` and the gate activations `acts [T, B, 4H]` (`σ(i), σ(f), tanh(g),
/// σ(o)`; zero for steps a sequence does not take), which the backward pass reuses.
///
/// `serial` keeps each step's product on the calling thread (when the caller runs directions in parallel).
pub fn forward<T: Float>(
    d: &Seq,
    proj: &[T],
    w_hh: ArrayView2<T>,
    h0: &[T],
    c0: &[T],
    serial: bool,
) -> (Vec<T>, Vec<T>) {
    let (b, t_len, h) = (d.batch, d.steps, d.hidden);
    let (g4, s2) = (4 * h, 2 * h);
    let mut s = vec![T::zero(); b * t_len * s2];
    let mut acts = vec![T::zero(); t_len * b * g4];
    let (mut hs, mut cs) = (h0.to_vec(), c0.to_vec());
    let mut gates = vec![T::zero(); b * g4];
    // w_hh^T packed once for the products of every step.
    let w_t = pack_rhs(w_hh.t());
    for t in d.order() {
        for r in 0..b {
            gates[r * g4..][..g4].copy_from_slice(&proj[(r * t_len + t) * g4..][..g4]);
        }
        let hv = ArrayView2::from_shape((b, h), &hs).expect("h");
        let gv = ArrayViewMut2::from_shape((b, g4), &mut gates).expect("gates");
        step_product(serial, hv, (&w_t, w_hh.t()), T::one(), gv);
        let a_t = &mut acts[t * b * g4..][..b * g4];
        for r in 0..b {
            if t < d.lengths[r] {
                let (gr, ar) = (&gates[r * g4..][..g4], &mut a_t[r * g4..][..g4]);
                cell_forward(gr, ar, &mut hs[r * h..][..h], &mut cs[r * h..][..h]);
            }
            let out = &mut s[(r * t_len + t) * s2..][..s2];
            out[..h].copy_from_slice(&hs[r * h..][..h]);
            out[h..].copy_from_slice(&cs[r * h..][..h]);
        }
    }
    (s, acts)
}

/// Gradients of one direction: `(d proj [B, T, 4H], d w_hh [4H, H], d h0 [B, H], d c0 [B, H])` from the
/// gradient `gs [B, T, 2H]` of `s`, given the forward pass's `s` and `acts`.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float>(
    d: &Seq,
    gs: &[T],
    s: &[T],
    acts: &[T],
    w_hh: ArrayView2<T>,
    h0: &[T],
    c0: &[T],
    serial: bool,
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<T>) {
    let (b, t_len, h) = (d.batch, d.steps, d.hidden);
    let (g4, s2) = (4 * h, 2 * h);
    let order = d.order();
    let mut dproj = vec![T::zero(); b * t_len * g4];
    // The gate gradients and the previous hidden states of every step, for one GEMM giving d w_hh at the end.
    let mut dgates_all = vec![T::zero(); t_len * b * g4];
    let mut hprev_all = vec![T::zero(); t_len * b * h];
    let (mut dh_next, mut dc_next) = (vec![T::zero(); b * h], vec![T::zero(); b * h]);
    let mut dh_prev = vec![T::zero(); b * h];
    let w_packed = pack_rhs(w_hh);
    for (pos, &t) in order.iter().enumerate().rev() {
        // The state before step t: after the previous step in processing order, or the initial state.
        let prev = if pos == 0 { None } else { Some(order[pos - 1]) };
        let dg_t = &mut dgates_all[t * b * g4..][..b * g4];
        let hp_t = &mut hprev_all[t * b * h..][..b * h];
        let a_t = &acts[t * b * g4..][..b * g4];
        for r in 0..b {
            let (hp, cp) = match prev {
                Some(q) => {
                    let st = &s[(r * t_len + q) * s2..][..s2];
                    (&st[..h], &st[h..])
                }
                None => (&h0[r * h..][..h], &c0[r * h..][..h]),
            };
            let g_out = &gs[(r * t_len + t) * s2..][..s2];
            let (dhn, dcn) = (&mut dh_next[r * h..][..h], &mut dc_next[r * h..][..h]);
            if t >= d.lengths[r] {
                // Carried state: the gradient passes straight through.
                for j in 0..h {
                    dhn[j] += g_out[j];
                    dcn[j] += g_out[h + j];
                }
                continue;
            }
            hp_t[r * h..][..h].copy_from_slice(hp);
            let c_t = &s[(r * t_len + t) * s2 + h..][..h];
            let (ar, dg) = (&a_t[r * g4..][..g4], &mut dg_t[r * g4..][..g4]);
            cell_backward(ar, c_t, cp, &g_out[..h], &g_out[h..], dhn, dcn, dg);
            dproj[(r * t_len + t) * g4..][..g4].copy_from_slice(dg);
        }
        // dh_prev = dgates w_hh for the rows that took the step; carried rows keep dh_next as it is.
        let dgv = ArrayView2::from_shape((b, g4), &*dg_t).expect("dgates");
        let out = ArrayViewMut2::from_shape((b, h), &mut dh_prev).expect("dh");
        step_product(serial, dgv, (&w_packed, w_hh), T::zero(), out);
        for r in 0..b {
            if t < d.lengths[r] {
                dh_next[r * h..][..h].copy_from_slice(&dh_prev[r * h..][..h]);
            }
        }
    }
    // d w_hh = sum over steps of dgates^T h_prev (zero rows for steps not taken).
    let mut dw = vec![T::zero(); g4 * h];
    let dg = ArrayView2::from_shape((t_len * b, g4), &dgates_all).expect("dgates");
    let hp = ArrayView2::from_shape((t_len * b, h), &hprev_all).expect("h_prev");
    product(serial, dg.t(), hp, T::zero(), ArrayViewMut2::from_shape((g4, h), &mut dw).expect("dw"));
    (dproj, dw, dh_next, dc_next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn data(len: usize, seed: usize) -> Vec<f64> {
        (0..len).map(|i| (((i * 37 + seed * 101) % 53) as f64 / 26.0 - 1.0) * 0.7).collect()
    }

    /// The step-by-step definition, for reference.
    fn naive(d: &Seq, proj: &[f64], w: &Array2<f64>, h0: &[f64], c0: &[f64]) -> Vec<f64> {
        let (b, t_len, h) = (d.batch, d.steps, d.hidden);
        let mut s = vec![0.0; b * t_len * 2 * h];
        for r in 0..b {
            let (mut hs, mut cs) = (h0[r * h..][..h].to_vec(), c0[r * h..][..h].to_vec());
            for t in d.order() {
                if t < d.lengths[r] {
                    let pre: Vec<f64> = (0..4 * h)
                        .map(|q| proj[(r * t_len + t) * 4 * h + q] + (0..h).map(|j| hs[j] * w[[q, j]]).sum::<f64>())
                        .collect();
                    let sg = |v: f64| 1.0 / (1.0 + (-v).exp());
                    for j in 0..h {
                        cs[j] = sg(pre[h + j]) * cs[j] + sg(pre[j]) * pre[2 * h + j].tanh();
                        hs[j] = sg(pre[3 * h + j]) * cs[j].tanh();
                    }
                }
                s[(r * t_len + t) * 2 * h..][..h].copy_from_slice(&hs);
                s[(r * t_len + t) * 2 * h + h..][..h].copy_from_slice(&cs);
            }
        }
        s
    }

    #[test]
    fn forward_matches_the_definition_and_backward_matches_finite_differences() {
        for (reverse, lengths) in [(false, vec![4, 2, 0]), (true, vec![4, 3, 1]), (false, vec![4, 4, 4])] {
            let d = Seq { batch: 3, steps: 4, hidden: 5, lengths, reverse };
            let (b, t, h) = (d.batch, d.steps, d.hidden);
            let proj = data(b * t * 4 * h, 1);
            let w = Array2::from_shape_vec((4 * h, h), data(4 * h * h, 2)).unwrap();
            let (h0, c0) = (data(b * h, 3), data(b * h, 4));
            let (s, acts) = forward(&d, &proj, w.view(), &h0, &c0, false);
            let want = naive(&d, &proj, &w, &h0, &c0);
            assert!(s.iter().zip(&want).all(|(a, e)| (a - e).abs() < 1e-12), "forward, reverse {reverse}");
            // Directional derivative of <gs, s> along random directions of every input.
            let gs = data(s.len(), 5);
            let (dp, dw, dh0, dc0) = backward(&d, &gs, &s, &acts, w.view(), &h0, &c0, true);
            let (vp, vw, vh, vc) = (data(proj.len(), 6), data(w.len(), 7), data(h0.len(), 8), data(c0.len(), 9));
            let eps = 1e-6;
            let at = |e: f64| {
                let shift = |x: &[f64], v: &[f64]| x.iter().zip(v).map(|(a, b)| a + e * b).collect::<Vec<_>>();
                let w2 = Array2::from_shape_vec((4 * h, h), shift(w.as_slice().unwrap(), &vw)).unwrap();
                let s2 = naive(&d, &shift(&proj, &vp), &w2, &shift(&h0, &vh), &shift(&c0, &vc));
                s2.iter().zip(&gs).map(|(a, b)| a * b).sum::<f64>()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
            let analytic = dot(&dp, &vp) + dot(&dw, &vw) + dot(&dh0, &vh) + dot(&dc0, &vc);
            assert!((numeric - analytic).abs() < 1e-6 * (1.0 + analytic.abs()), "{numeric} vs {analytic}");
        }
    }
}
