//! C-SWM's evaluation: Hits@1 and mean reciprocal rank (MRR) of multi-step predictions in latent space, as
//! the public reference's `eval.py` computes them.
//!
//! For each evaluation episode `i`: encode its first observation, apply the transition model `h` times with
//! the recorded actions (`s <- s + T(s, a_t)`, no re-encoding or refinement between steps), and encode the
//! target, observation `h`. States are flattened to `K D` vectors. The reference's distance matrix has the
//! *targets* as rows and the predictions as columns (`pairwise_distance_matrix(next_state, pred_state)`,
//! squared Euclidean), and ranks, in row `i`, the matching prediction `i` among all predictions of the
//! evaluation set. It prepends the diagonal to each row and sorts stably, so on a tie the matching prediction
//! comes first: the rank of episode `i` is the number of predictions `j` with `d(target_i, pred_j) <
//! d(target_i, pred_i)`, strictly (rank 0 is a hit). Hits@1 is the fraction of rank 0 and MRR the mean of
//! `1 / (rank + 1)`.
//!
//! Differences from the reference, both harmless: distances are accumulated in f64 (the reference's are
//! float32), and every episode is ranked (the reference evaluates in batches of 100 and skips an incomplete
//! last batch, which never happens with its 100 or 10,000 episodes).

use super::data::Episodes;
use super::model::Cswm;
use models::evaluate;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// The metrics at one prediction horizon.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StepMetrics {
    /// Prediction steps `h`.
    pub steps: usize,
    /// Fraction of episodes whose prediction is the nearest to its target.
    pub hits_at_1: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Episodes ranked.
    pub episodes: usize,
}

/// The rank of each target's matching prediction (see the module documentation): `pred` and `target` are
/// `[N, F]`, row `i` of each belonging to episode `i`.
pub fn ranks(pred: ArrayView2<f32>, target: ArrayView2<f32>) -> Vec<usize> {
    assert_eq!(pred.shape(), target.shape(), "ranks: predictions and targets differ in shape");
    let dist = |t: usize, p: usize| -> f64 {
        target.row(t).iter().zip(pred.row(p)).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum()
    };
    let n = pred.nrows();
    (0..n)
        .into_par_iter()
        .map(|i| {
            let own = dist(i, i);
            (0..n).filter(|&j| dist(i, j) < own).count()
        })
        .collect()
}

/// The fraction of ranks below `k` (Hits@k).
pub fn hits_at(ranks: &[usize], k: usize) -> f64 {
    ranks.iter().filter(|&&r| r < k).count() as f64 / ranks.len() as f64
}

/// The mean of `1 / (rank + 1)`.
pub fn mrr(ranks: &[usize]) -> f64 {
    ranks.iter().map(|&r| 1.0 / (r as f64 + 1.0)).sum::<f64>() / ranks.len() as f64
}

/// Hits@1 and MRR after each of `horizons` prediction steps (each at most the episodes' length), over all
/// episodes of `data`, encoding `batch` episodes at a time in evaluation mode (batch norm's running
/// statistics; the SRN's inner loop still runs).
pub fn evaluate_ranking(model: &Cswm, data: &Episodes, horizons: &[usize], batch: usize) -> Vec<StepMetrics> {
    assert!(batch > 0, "evaluate_ranking: batch size 0");
    for &h in horizons {
        assert!(
            h >= 1 && h <= data.steps(),
            "evaluate_ranking: {h} steps, but the episodes of {} have {}",
            data.name(),
            data.steps()
        );
    }
    let n = data.num_episodes();
    let width = model.config.objects * model.config.embedding_dim;
    let mut preds: Vec<Array2<f32>> = horizons.iter().map(|_| Array2::zeros((n, width))).collect();
    let mut targets = preds.clone();
    let last = horizons.iter().copied().max().unwrap_or(0);
    for start in (0..n).step_by(batch) {
        let eps: Vec<usize> = (start..(start + batch).min(n)).collect();
        let flat = |v: &ndarray::ArrayD<f32>| {
            v.view().into_shape_with_order((eps.len(), width)).expect("states are [B, K, D]").to_owned()
        };
        evaluate(model, |scope| {
            let tape = scope.tape();
            let at = |t: usize| eps.iter().map(|&e| (e, t)).collect::<Vec<_>>();
            let mut state = model.encode(scope, tape.constant(data.observations(&at(0)))).set;
            for t in 0..last {
                let actions: Vec<usize> = eps.iter().map(|&e| data.action(e, t)).collect();
                state = state + model.transition(scope, state, &actions);
                for (k, _) in horizons.iter().enumerate().filter(|(_, &h)| h == t + 1) {
                    let target = model.encode(scope, tape.constant(data.observations(&at(t + 1)))).set;
                    preds[k].slice_mut(ndarray::s![start..start + eps.len(), ..]).assign(&flat(&state.value()));
                    targets[k].slice_mut(ndarray::s![start..start + eps.len(), ..]).assign(&flat(&target.value()));
                }
            }
        });
    }
    horizons
        .iter()
        .enumerate()
        .map(|(k, &h)| {
            let r = ranks(preds[k].view(), targets[k].view());
            StepMetrics { steps: h, hits_at_1: hits_at(&r, 1), mrr: mrr(&r), episodes: n }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ranks_hits_and_mrr_match_a_hand_computed_case() {
        // Targets t0 = (0, 0), t1 = (10, 0), t2 = (0, 5); predictions p0 = (1, 0), p1 = (0, 0), p2 = (0, 3).
        // Row 0: d(t0, p0) = 1; d(t0, p1) = 0 < 1, d(t0, p2) = 9: rank 1.
        // Row 1: d(t1, p1) = 100; d(t1, p0) = 81 < 100, d(t1, p2) = 109: rank 1.
        // Row 2: d(t2, p2) = 4; d(t2, p0) = 26, d(t2, p1) = 25: rank 0.
        let pred = array![[1.0f32, 0.0], [0.0, 0.0], [0.0, 3.0]];
        let target = array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 5.0]];
        let r = ranks(pred.view(), target.view());
        assert_eq!(r, vec![1, 1, 0]);
        assert!((hits_at(&r, 1) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(hits_at(&r, 2), 1.0);
        assert!((mrr(&r) - (0.5 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_matching_prediction() {
        // Every prediction is the same point: all distances tie, every rank is 0 (the reference's stable
        // sort with the diagonal first).
        let pred = array![[1.0f32, 1.0], [1.0, 1.0], [1.0, 1.0]];
        let target = array![[0.0f32, 0.0], [2.0, 2.0], [3.0, 1.0]];
        assert_eq!(ranks(pred.view(), target.view()), vec![0, 0, 0]);
        // A strictly nearer other prediction still counts.
        let pred = array![[1.0f32, 1.0], [0.5, 0.5]];
        let target = array![[0.0f32, 0.0], [0.5, 0.5]];
        assert_eq!(ranks(pred.view(), target.view()), vec![1, 0]);
    }
}
