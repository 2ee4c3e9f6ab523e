//! The Robustness (Synthetic) task's configuration, chosen as the paper describes (Sec. 3.1): "an easy
//! configuration on which both models provide the correct answer with very high confidence", translated to many
//! positions, each then rotated.
//!
//! - [`candidates`]: a seeded stream of candidate configurations. Each is a scene of the generator
//!   ([`random_scene`]) with a question colour drawn with it, kept when its Furthest question is easy
//!   ([`is_easy`]) and when at least `n` integer positions exist at which EVERY rotation about the
//!   configuration's centroid stays inside the valid range ([`Configuration::positions`]); `n` of those positions,
//!   drawn from the same stream, are the positions used.
//! - [`choose`]: the first candidate, in stream order, that every trained model answers right UNROTATED with
//!   softmax probability at least [`CONFIDENCE`] at every one of its positions; at most `cap` candidates are
//!   scored, and when none passes the one with the highest minimum probability (over models and positions) is
//!   taken. The models are scored through closures (`items -> probability of the right answer`), which only
//!   ever receive the candidates' unrotated copies: the choice is fixed before any rotated answer is seen.

use super::data::{random_scene, Kind, Object, Question, Shape, COLOUR_NAMES, OBJECTS, SIZE};
use super::robustness::{centroid, is_easy, VALID};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use serde::Serialize;

/// The softmax probability of the right Furthest answer that every model must give, unrotated, at every
/// position of a candidate for it to be chosen: the paper's "correct answer with very high confidence".
pub const CONFIDENCE: f64 = 0.99;

/// A scene and its question.
pub type Item = (Vec<Object>, Question);

/// One object of a configuration: its colour, shape and centre as an offset in pixels from the query object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub colour: usize,
    pub shape: Shape,
    pub dx: i32,
    pub dy: i32,
}

/// A configuration of the six objects, up to translation: the colour of the question's object (the query) and
/// every object (in colour order) as an offset from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Configuration {
    pub query: usize,
    pub objects: Vec<Placed>,
}

impl Configuration {
    /// The configuration of a generated scene (integer centres, indexed by colour) asked about `query`.
    pub fn of_scene(scene: &[Object], query: usize) -> Self {
        let (qx, qy) = (scene[query].x, scene[query].y);
        let objects = scene
            .iter()
            .map(|o| Placed { colour: o.colour, shape: o.shape, dx: (o.x - qx) as i32, dy: (o.y - qy) as i32 })
            .collect();
        Configuration { query, objects }
    }

    /// The scene with the query object's centre at `(x, y)`.
    pub fn at(&self, (x, y): (i32, i32)) -> Vec<Object> {
        self.objects
            .iter()
            .map(|p| Object { colour: p.colour, shape: p.shape, x: (x + p.dx) as f32, y: (y + p.dy) as f32 })
            .collect()
    }

    /// "What shape is the object furthest from the query object?"
    pub fn question(&self) -> Question {
        Question { colour: self.query, kind: Kind::Furthest }
    }

    /// The integer positions of the query object (row by row) at which EVERY rotation of the configuration about
    /// its centroid stays inside the valid range: the circle swept by the object furthest from the centroid must
    /// fit in `[5, 70]` on both axes, with a margin of 0.01 px for rounding.
    pub fn positions(&self) -> Vec<(i32, i32)> {
        let base = self.at((0, 0));
        let (cx, cy) = centroid(&base);
        let reach = base.iter().map(|o| ((o.x - cx).powi(2) + (o.y - cy).powi(2)).sqrt()).fold(0.0, f32::max) + 0.01;
        let fits = |c: f32| c - reach >= VALID.0 && c + reach <= VALID.1;
        let mut out = Vec::new();
        for y in 0..SIZE as i32 {
            for x in 0..SIZE as i32 {
                if fits(x as f32 + cx) && fits(y as f32 + cy) {
                    out.push((x, y));
                }
            }
        }
        out
    }

    /// "query red; red circle (0, 0), green square (12, 0), ...".
    pub fn describe(&self) -> String {
        let objects: Vec<String> = self
            .objects
            .iter()
            .map(|p| {
                let shape = if p.shape == Shape::Square { "square" } else { "circle" };
                format!("{} {shape} ({}, {})", COLOUR_NAMES[p.colour], p.dx, p.dy)
            })
            .collect();
        format!("query {}; {}", COLOUR_NAMES[self.query], objects.join(", "))
    }
}

/// One candidate of the stream: its index (from 0), configuration and the positions it is used at.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub index: usize,
    pub configuration: Configuration,
    pub positions: Vec<(i32, i32)>,
}

impl Candidate {
    /// The translated copies, unrotated, with the question: the Synthetic task's items.
    pub fn items(&self) -> Vec<Item> {
        let q = self.configuration.question();
        self.positions.iter().map(|&p| (self.configuration.at(p), q)).collect()
    }
}

/// The seeded stream of candidate configurations, each used at `n` distinct rotation-safe positions: a scene of
/// the generator and a question colour are drawn together, and kept when the Furthest question is easy and
/// the configuration has at least `n` positions at which every rotation stays inside the image; `n` of them
/// are then drawn. Deterministic per seed; endless.
pub fn candidates(n: usize, seed: u64) -> impl Iterator<Item = Candidate> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index = 0;
    std::iter::from_fn(move || loop {
        let scene = random_scene(&mut rng);
        let query = rng.gen_range(0..OBJECTS);
        if !is_easy(&scene, query) {
            continue;
        }
        let configuration = Configuration::of_scene(&scene, query);
        let mut positions = configuration.positions();
        if positions.len() < n {
            continue;
        }
        positions.shuffle(&mut rng);
        positions.truncate(n);
        index += 1;
        return Some(Candidate { index: index - 1, configuration, positions });
    })
}

/// The chosen configuration and why.
#[derive(Clone, Debug)]
pub struct Choice {
    pub candidate: Candidate,
    /// Per model (in the order given): its lowest probability of the right answer over the positions.
    pub min_confidence: Vec<f64>,
    /// Every model reached the threshold at every position; false for the fallback.
    pub passed: bool,
    /// How many candidates were scored.
    pub searched: usize,
}

/// Scores every item of one candidate for one model: the probability it gives the right answer.
pub type Score<'a> = &'a dyn Fn(&[Item]) -> Vec<f64>;

/// The lowest of the probabilities (a NaN counts as 0).
fn lowest(p: &[f64]) -> f64 {
    p.iter().map(|&x| if x.is_nan() { 0.0 } else { x }).fold(f64::INFINITY, f64::min)
}

/// The first of the first `cap` candidates whose unrotated items every model in `models` answers right with
/// probability at least `threshold`; when none does, the one whose lowest probability (over models and items)
/// is highest, the earliest on a tie. A candidate that already falls below both the threshold and the best
/// fallback so far is not scored by the remaining models (it can neither pass nor be the fallback), so every
/// returned `min_confidence` is complete.
pub fn choose(candidates: impl IntoIterator<Item = Candidate>, cap: usize, threshold: f64, models: &[Score]) -> Choice {
    assert!(cap > 0 && !models.is_empty(), "choose: at least one candidate and one model");
    let mut best: Option<(Candidate, Vec<f64>, f64)> = None;
    let mut searched = 0;
    for candidate in candidates.into_iter().take(cap) {
        searched += 1;
        let items = candidate.items();
        let (mut mins, mut low) = (Vec::with_capacity(models.len()), f64::INFINITY);
        for score in models {
            let p = score(&items);
            assert_eq!(p.len(), items.len(), "choose: one probability per item");
            mins.push(lowest(&p));
            low = low.min(lowest(&p));
            if low < threshold && best.as_ref().is_some_and(|b| low <= b.2) {
                break;
            }
        }
        if low >= threshold {
            return Choice { candidate, min_confidence: mins, passed: true, searched };
        }
        if mins.len() == models.len() && best.as_ref().is_none_or(|b| low > b.2) {
            best = Some((candidate, mins, low));
        }
    }
    let (candidate, min_confidence, _) = best.expect("at least one candidate was scored");
    Choice { candidate, min_confidence, passed: false, searched }
}

#[cfg(test)]
mod tests {
    use super::super::robustness::{angles, rotate, rotations, ROTATIONS};
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn candidates_are_deterministic_easy_and_rotation_safe_at_their_positions() {
        let a: Vec<Candidate> = candidates(200, 4).take(6).collect();
        assert_eq!(a, candidates(200, 4).take(6).collect::<Vec<_>>());
        assert_ne!(a, candidates(200, 5).take(6).collect::<Vec<_>>());
        let every = angles(ROTATIONS);
        for (i, c) in a.iter().enumerate() {
            assert_eq!(c.index, i);
            assert_eq!(c.positions.len(), 200);
            let mut distinct = c.positions.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), 200, "distinct positions");
            let q = c.configuration.question();
            let me = c.configuration.objects[q.colour];
            assert_eq!((me.colour, me.dx, me.dy), (q.colour, 0, 0), "offsets are from the query object");
            for (scene, question) in c.items() {
                assert_eq!(question, q);
                assert!(is_easy(&scene, q.colour), "{}", c.configuration.describe());
                for (k, o) in scene.iter().enumerate() {
                    assert_eq!(o.colour, k);
                    assert!(scene[..k].iter().all(|p| o.dist2(p) >= 100.0), "the generator's spacing");
                }
                let (centre, truth) = (centroid(&scene), q.answer(&scene));
                for &angle in &every {
                    let r = rotate(&scene, angle, centre).unwrap_or_else(|| panic!("angle {angle} leaves the range"));
                    assert_eq!(q.answer(&r), truth);
                }
                assert_eq!(rotations(&scene, ROTATIONS).len(), ROTATIONS);
            }
        }
        // The stream is not one configuration repeated.
        assert!(a.windows(2).all(|w| w[0].configuration != w[1].configuration));
    }

    #[test]
    fn positions_by_hand() {
        // Two objects 20 px apart on a row: the centroid is 10 px from each, so the centroid's x and y must lie
        // in [15.01, 59.99], 16 to 59 (44 values each); the query object sits 10 px left of the centroid.
        let objects = vec![
            Placed { colour: 0, shape: Shape::Circle, dx: 0, dy: 0 },
            Placed { colour: 1, shape: Shape::Square, dx: 20, dy: 0 },
        ];
        let c = Configuration { query: 0, objects };
        let p = c.positions();
        assert_eq!(p.len(), 44 * 44);
        assert_eq!((p[0], p[p.len() - 1]), ((6, 16), (49, 59)));
        assert_eq!(c.at((6, 16))[1], Object { colour: 1, shape: Shape::Square, x: 26.0, y: 16.0 });
        assert!(c.describe().starts_with("query red; red circle (0, 0), green square (20, 0)"), "{}", c.describe());
    }

    /// A stub model: the probability of candidate `index` (read from the item's configuration) from a table,
    /// the same at every position but the last, which gets `last`; records which candidates it was asked about.
    fn stub<'a>(
        table: Vec<f64>,
        last: Vec<f64>,
        stream: &[Candidate],
        asked: &'a RefCell<Vec<usize>>,
    ) -> impl Fn(&[Item]) -> Vec<f64> + 'a {
        let known: Vec<Vec<Item>> = stream.iter().map(Candidate::items).collect();
        move |items: &[Item]| {
            let i = known.iter().position(|k| k.as_slice() == items).expect("only a candidate's unrotated items");
            asked.borrow_mut().push(i);
            let mut p = vec![table[i]; items.len()];
            *p.last_mut().unwrap() = last[i];
            p
        }
    }

    fn stream() -> Vec<Candidate> {
        candidates(3, 7).take(8).collect()
    }

    #[test]
    fn the_first_candidate_both_models_pass_is_chosen() {
        let s = stream();
        let (asked_a, asked_b) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
        // Candidate 1 passes model A only, 2 model B only, 3 fails A at its last position, 4 passes both, 6 too.
        let a = stub(
            vec![0.5, 0.999, 0.2, 0.995, 0.991, 0.3, 1.0, 1.0],
            vec![0.5, 0.999, 0.2, 0.98, 0.99, 0.3, 1.0, 1.0],
            &s,
            &asked_a,
        );
        let b = stub(
            vec![0.6, 0.4, 0.999, 0.999, 0.995, 0.3, 1.0, 1.0],
            vec![0.6, 0.4, 0.999, 0.999, 0.992, 0.3, 1.0, 1.0],
            &s,
            &asked_b,
        );
        let choice = choose(s.clone(), 100, 0.99, &[&a, &b]);
        assert!(choice.passed);
        assert_eq!(choice.candidate, s[4]);
        assert_eq!((choice.searched, choice.min_confidence.clone()), (5, vec![0.99, 0.992]));
        // Every candidate up to the chosen one was scored by A, in order, and nothing after it.
        assert_eq!(*asked_a.borrow(), vec![0, 1, 2, 3, 4]);
        assert!(asked_b.borrow().iter().all(|&i| i <= 4));
        // Model order does not change the choice.
        let swapped = choose(s.clone(), 100, 0.99, &[&b, &a]);
        assert_eq!((swapped.candidate, swapped.min_confidence), (s[4].clone(), vec![0.992, 0.99]));
    }

    #[test]
    fn without_a_passing_candidate_the_highest_minimum_is_the_fallback() {
        let s = stream();
        let asked = RefCell::new(Vec::new());
        // Minimum over both models: 0.5, 0.3, 0.7, 0.6, 0.7 (a tie, later), 0.2, ...: candidate 2.
        let a = stub(vec![0.5, 0.9, 0.8, 0.6, 0.95, 0.2, 0.1, 0.0], vec![0.9; 8], &s, &asked);
        let b = stub(
            vec![0.98, 0.3, 0.985, 0.97, 0.7, 0.9, 0.9, 0.9],
            vec![0.99, 0.99, 0.7, 0.99, 0.99, 0.99, 0.99, 0.99],
            &s,
            &asked,
        );
        let choice = choose(s.clone(), 8, 0.99, &[&a, &b]);
        assert!(!choice.passed);
        assert_eq!(choice.candidate, s[2]);
        assert_eq!((choice.searched, choice.min_confidence.clone()), (8, vec![0.8, 0.7]));
        // The cap: only the first two are scored, candidate 0 is the better of them.
        let capped = choose(s.clone(), 2, 0.99, &[&a, &b]);
        assert_eq!((capped.candidate.index, capped.searched, capped.passed), (0, 2, false));
        assert_eq!(capped.min_confidence, vec![0.5, 0.98]);
        // A NaN counts as the lowest probability.
        let nan = |items: &[Item]| vec![f64::NAN; items.len()];
        let one = |items: &[Item]| vec![1.0f64; items.len()];
        let c = choose(s.clone(), 3, 0.99, &[&one, &nan]);
        assert_eq!((c.candidate.index, c.passed, c.min_confidence.clone()), (0, false, vec![1.0, 0.0]));
    }

    #[test]
    fn pruning_never_changes_the_choice() {
        // Against the exhaustive rule, on random stub tables (some with passing candidates).
        let s = stream();
        let mut rng = StdRng::seed_from_u64(3);
        for round in 0..200 {
            let table = |rng: &mut StdRng| -> Vec<f64> {
                (0..8)
                    .map(|_| if rng.gen_bool(0.15) { rng.gen_range(0.99..=1.0) } else { rng.gen_range(0.0..1.0) })
                    .collect()
            };
            let (ta, tb) = (table(&mut rng), table(&mut rng));
            let (asked_a, asked_b) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
            let a = stub(ta.clone(), ta.clone(), &s, &asked_a);
            let b = stub(tb.clone(), tb.clone(), &s, &asked_b);
            let choice = choose(s.clone(), 8, 0.99, &[&a, &b]);
            let lows: Vec<f64> = ta.iter().zip(&tb).map(|(x, y)| x.min(*y)).collect();
            let expected = match lows.iter().position(|&l| l >= 0.99) {
                Some(i) => (i, true),
                None => {
                    let max = lows.iter().cloned().fold(f64::MIN, f64::max);
                    (lows.iter().position(|&l| l == max).unwrap(), false)
                }
            };
            assert_eq!((choice.candidate.index, choice.passed), expected, "round {round}: {ta:?} {tb:?}");
            let i = choice.candidate.index;
            assert_eq!(choice.min_confidence, vec![ta[i], tb[i]], "round {round}");
        }
    }

    #[test]
    fn one_model_alone_decides() {
        let s = stream();
        let asked = RefCell::new(Vec::new());
        let a = stub(vec![0.5, 0.999, 0.2, 0.995, 0.991, 0.3, 1.0, 1.0], vec![0.5; 8], &s, &asked);
        let only = stub(
            vec![0.5, 0.999, 0.2, 0.995, 0.991, 0.3, 1.0, 1.0],
            vec![0.5, 0.999, 0.2, 0.995, 0.991, 0.3, 1.0, 1.0],
            &s,
            &asked,
        );
        assert_eq!(choose(s.clone(), 8, 0.99, &[&only]).candidate.index, 1);
        // Its last position at 0.5 everywhere: none passes, and of the candidates tied at 0.5 the earliest.
        let c = choose(s.clone(), 8, 0.99, &[&a]);
        assert_eq!((c.candidate.index, c.passed, c.min_confidence), (0, false, vec![0.5]));
    }
}
