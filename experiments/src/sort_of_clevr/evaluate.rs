//! Accuracy by question type, and the paper's robustness criterion: a Furthest question is answered robustly
//! when the answer is right at every rotation of the shapes' positions.

use super::data::{batch_of, Batch, Kind, Object, Question, SortOfClevr};
use super::model::RnModel;
use super::robustness::{centroid, rotate_placed};
use crate::distributed::World;
use models::evaluate;
use serde::{Deserialize, Serialize};

/// Correct answers and questions asked, per question kind (in `Kind::ALL` order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub correct: [usize; 6],
    pub total: [usize; 6],
}

impl Accuracy {
    /// The counts of every rank of `world`, summed.
    pub fn sum_over(&mut self, world: &World) {
        let [c0, c1, c2, c3, c4, c5] = &mut self.correct;
        let [t0, t1, t2, t3, t4, t5] = &mut self.total;
        sum_counts([c0, c1, c2, c3, c4, c5, t0, t1, t2, t3, t4, t5], world);
    }

    pub fn add(&mut self, kind: Kind, correct: bool) {
        let k = Kind::ALL.iter().position(|&x| x == kind).expect("a kind");
        self.total[k] += 1;
        self.correct[k] += usize::from(correct);
    }

    fn percent(&self, keep: impl Fn(Kind) -> bool) -> f64 {
        let (mut c, mut t) = (0, 0);
        for (k, kind) in Kind::ALL.iter().enumerate() {
            if keep(*kind) {
                c += self.correct[k];
                t += self.total[k];
            }
        }
        if t == 0 {
            f64::NAN
        } else {
            100.0 * c as f64 / t as f64
        }
    }

    /// % right on questions of `kind` (NaN when none was asked).
    pub fn kind(&self, kind: Kind) -> f64 {
        self.percent(|k| k == kind)
    }

    pub fn relational(&self) -> f64 {
        self.percent(Kind::relational)
    }

    pub fn non_relational(&self) -> f64 {
        self.percent(|k| !k.relational())
    }

    pub fn all(&self) -> f64 {
        self.percent(|_| true)
    }
}

/// The model's logits `[B, 10]` for a batch, in eval mode and without an outer graph.
fn logits(model: &RnModel, batch: &Batch) -> std::rc::Rc<ndarray::ArrayD<f32>> {
    evaluate(model, |scope| {
        let tape = scope.tape();
        let images = tape.constant(batch.images.clone());
        let questions = tape.constant(batch.questions.clone());
        model.forward(scope, images, questions, 0).0.value()
    })
}

/// The model's answers (argmax of the logits) to a batch, in eval mode and without an outer graph.
pub fn predict(model: &RnModel, batch: &Batch) -> Vec<usize> {
    argmax_rows(&logits(model, batch))
}

/// The softmax probability of class `targets[i]` in each row `i` of a `[B, C]` array of logits (in f64).
pub fn softmax_at(logits: &ndarray::ArrayD<f32>, targets: &[usize]) -> Vec<f64> {
    let c = logits.shape()[1];
    let v = logits.as_slice().expect("contiguous logits");
    v.chunks(c)
        .zip(targets)
        .map(|(row, &t)| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
            (row[t] as f64 - max).exp() / sum
        })
        .collect()
}

/// The probability (softmax of the logits) `model` gives the right answer of every (scene, question) item,
/// unrotated, in batches of `batch`.
pub fn right_answer_probabilities(model: &RnModel, items: &[(Vec<Object>, Question)], batch: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let refs: Vec<(&[Object], Question)> = chunk.iter().map(|(o, q)| (o.as_slice(), *q)).collect();
        let b = batch_of(&refs);
        out.extend(softmax_at(&logits(model, &b), &b.answers));
    }
    out
}

/// The index of each row's largest value in a `[B, C]` array.
pub fn argmax_rows(logits: &ndarray::ArrayD<f32>) -> Vec<usize> {
    let c = logits.shape()[1];
    let v = logits.as_slice().expect("contiguous logits");
    v.chunks(c).map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)).collect()
}

/// Accuracy of `model` on every question of `data`.
pub fn accuracy(model: &RnModel, data: &SortOfClevr, batch_size: usize) -> Accuracy {
    let indices: Vec<usize> = (0..data.len()).collect();
    accuracy_on(model, data, &indices, batch_size)
}

/// [`accuracy`] on the questions `indices` of `data`.
pub fn accuracy_on(model: &RnModel, data: &SortOfClevr, indices: &[usize], batch_size: usize) -> Accuracy {
    let mut acc = Accuracy::default();
    for chunk in indices.chunks(batch_size) {
        let batch = data.batch(chunk);
        for ((p, a), k) in predict(model, &batch).iter().zip(&batch.answers).zip(&batch.kinds) {
            acc.add(*k, p == a);
        }
    }
    acc
}

/// Sum counts over the ranks of `world` (a no-op on one process): for an evaluation split across the ranks of
/// a data-parallel run.
fn sum_counts<const N: usize>(counts: [&mut usize; N], world: &World) {
    let mut v: Vec<u64> = counts.iter().map(|c| **c as u64).collect();
    world.all_reduce_sum(&mut v);
    for (c, s) in counts.into_iter().zip(v) {
        *c = s as usize;
    }
}

/// The robustness of a model on a set of (scene, Furthest question) items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Robustness {
    pub images: usize,
    /// Answered right at every evaluated rotation.
    pub robust: usize,
    /// Answered right as generated (no rotation).
    pub right_unrotated: usize,
    /// Rotations that were evaluated, and those skipped because a shape would leave the image.
    pub rotations_evaluated: usize,
    pub rotations_skipped: usize,
}

impl Robustness {
    /// The counts of every rank of `world`, summed.
    pub fn sum_over(&mut self, world: &World) {
        let r = self;
        sum_counts(
            [
                &mut r.images,
                &mut r.robust,
                &mut r.right_unrotated,
                &mut r.rotations_evaluated,
                &mut r.rotations_skipped,
            ],
            world,
        );
    }

    pub fn percent(&self) -> f64 {
        100.0 * self.robust as f64 / self.images.max(1) as f64
    }

    pub fn percent_right_unrotated(&self) -> f64 {
        100.0 * self.right_unrotated as f64 / self.images.max(1) as f64
    }
}

/// For every item, rotate its shapes' positions about their centroid by each of `angles` (the answer does not
/// change: rotations keep distances), re-placed inside the image where a shape would leave it, and ask the
/// question at every such rotation (an angle no translation fits is skipped).
/// An item is robust when every such answer is right; evaluation of an item stops at its first wrong answer.
pub fn robustness(model: &RnModel, items: &[(Vec<Object>, Question)], angles: &[f32], batch: usize) -> Robustness {
    let mut r = Robustness { images: items.len(), ..Robustness::default() };
    for (objects, question) in items {
        let truth = question.answer(objects);
        let unrotated = batch_of(&[(objects.as_slice(), *question)]);
        r.right_unrotated += usize::from(predict(model, &unrotated)[0] == truth);
        let centre = centroid(objects);
        let mut robust = true;
        for chunk in angles.chunks(batch) {
            let scenes: Vec<Vec<Object>> = chunk.iter().filter_map(|&a| rotate_placed(objects, a, centre)).collect();
            r.rotations_skipped += chunk.len() - scenes.len();
            if scenes.is_empty() {
                continue;
            }
            let items: Vec<(&[Object], Question)> = scenes.iter().map(|s| (s.as_slice(), *question)).collect();
            let answers = predict(model, &batch_of(&items));
            r.rotations_evaluated += answers.len();
            if answers.iter().any(|&a| a != truth) {
                robust = false;
                break;
            }
        }
        r.robust += usize::from(robust);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_splits_relational_from_non_relational() {
        let mut a = Accuracy::default();
        a.add(Kind::Shape, true);
        a.add(Kind::Left, false);
        a.add(Kind::Furthest, true);
        a.add(Kind::Furthest, true);
        a.add(Kind::Count, false);
        assert_eq!(a.non_relational(), 50.0);
        assert!((a.relational() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(a.kind(Kind::Furthest), 100.0);
        assert!(a.kind(Kind::Closest).is_nan());
        assert_eq!(a.all(), 60.0);
    }

    #[test]
    fn softmax_at_takes_each_rows_target_probability() {
        let l = ndarray::ArrayD::from_shape_vec(vec![2, 3], vec![0.0, 0.0, 0.0, 1000.0, 0.0, 1000.0]).unwrap();
        let p = softmax_at(&l, &[1, 2]);
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6, "{p:?}");
        let l = ndarray::ArrayD::from_shape_vec(vec![1, 2], vec![(0.99f32 / 0.01).ln(), 0.0]).unwrap();
        assert!((softmax_at(&l, &[0])[0] - 0.99).abs() < 1e-6);
    }

    #[test]
    fn argmax_takes_each_rows_largest() {
        let l = ndarray::ArrayD::from_shape_vec(vec![2, 3], vec![0.1, 0.7, 0.2, 3.0, -1.0, 2.0]).unwrap();
        assert_eq!(argmax_rows(&l), vec![1, 0]);
    }
}
