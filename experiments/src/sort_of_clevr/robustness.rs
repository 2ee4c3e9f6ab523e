//! The paper's Robustness tasks on Sort-of-CLEVR (Sec. 3.1, Table 2): is a model's Furthest answer the same when
//! the scene is rotated?
//!
//! A scene is rotated by turning the shapes' centre COORDINATES by an angle about a centre (the scene's centroid in
//! the evaluation); the shapes are re-drawn axis-aligned at the rotated positions (rendering rounds them to the
//! nearest pixel). Rotation keeps every pairwise distance, so the Furthest answer is invariant. A rotation that puts
//! any centre outside the generator's range `[5, 70]` on either axis is not a valid scene as it stands
//! ([`rotate`] returns `None`); the evaluation then re-places it: [`rotate_placed`] moves the turned scene by the
//! smallest translation that brings every centre back inside (distances, hence the answer, are kept), and skips the
//! angle only when the turned scene is wider than the range on an axis. The Synthetic task is built so that no angle
//! ever needs either.
//!
//! - Robustness (Dataset): [`easy_dataset`], new random scenes with an "easy" Furthest question ([`is_easy`]).
//! - Robustness (Synthetic): one easy configuration, chosen from the trained models, at many positions: see
//!   [`super::synthetic`].

use super::data::{random_scene, Kind, Object, Question, OBJECTS};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The valid range of a centre coordinate after rotation, inclusive.
pub const VALID: (f32, f32) = (5.0, 70.0);
/// Angles per image in the paper's criterion.
pub const ROTATIONS: usize = 720;

/// Every centre turned by `angle` (radians) about `centre`, wherever it lands.
fn turn(objects: &[Object], angle: f32, centre: (f32, f32)) -> Vec<Object> {
    let (s, c) = (angle as f64).sin_cos();
    let (cx, cy) = (centre.0 as f64, centre.1 as f64);
    objects
        .iter()
        .map(|o| {
            let (dx, dy) = (o.x as f64 - cx, o.y as f64 - cy);
            Object { x: (cx + c * dx - s * dy) as f32, y: (cy + s * dx + c * dy) as f32, ..*o }
        })
        .collect()
}

fn inside(v: f32) -> bool {
    (VALID.0..=VALID.1).contains(&v)
}

/// Rotate every centre by `angle` (radians) about `centre`; None if any rotated centre falls outside the valid
/// range [5, 70] on either axis. Shapes and colours are kept.
pub fn rotate(objects: &[Object], angle: f32, centre: (f32, f32)) -> Option<Vec<Object>> {
    let turned = turn(objects, angle, centre);
    turned.iter().all(|o| inside(o.x) && inside(o.y)).then_some(turned)
}

/// The scene moved by the smallest translation that brings every centre into the valid range; None when its
/// extent along an axis is wider than the range. A scene already inside is returned unchanged.
pub fn place(objects: &[Object]) -> Option<Vec<Object>> {
    let shift = |values: Vec<f32>| -> Option<f32> {
        let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        if hi - lo > VALID.1 - VALID.0 {
            None
        } else {
            Some((VALID.0 - lo).max(0.0) + (VALID.1 - hi).min(0.0))
        }
    };
    let dx = shift(objects.iter().map(|o| o.x).collect())?;
    let dy = shift(objects.iter().map(|o| o.y).collect())?;
    // The clamp only absorbs rounding: the shift lands the extreme centres on the range's ends.
    Some(objects.iter().map(|o| Object { x: clamp(o.x + dx), y: clamp(o.y + dy), ..*o }).collect())
}

fn clamp(v: f32) -> f32 {
    v.clamp(VALID.0, VALID.1)
}

/// The evaluation's rotation: turn the centres by `angle` about `centre`, then [`place`] the scene back inside
/// the image if the turn pushed a shape out (a translation, so distances and the Furthest answer are kept).
/// None only when no translation fits the turned scene; the evaluation skips those angles.
pub fn rotate_placed(objects: &[Object], angle: f32, centre: (f32, f32)) -> Option<Vec<Object>> {
    place(&turn(objects, angle, centre))
}

/// The mean of the centres.
pub fn centroid(objects: &[Object]) -> (f32, f32) {
    assert!(!objects.is_empty(), "centroid: no objects");
    let n = objects.len() as f64;
    let (sx, sy) = objects.iter().fold((0.0, 0.0), |(sx, sy), o| (sx + o.x as f64, sy + o.y as f64));
    ((sx / n) as f32, (sy / n) as f32)
}

/// `count` evenly spaced angles in [0, 2pi), starting at 0.
pub fn angles(count: usize) -> Vec<f32> {
    (0..count).map(|i| (i as f64 * std::f64::consts::TAU / count as f64) as f32).collect()
}

/// The valid rotations of a scene about its centroid at `angles(count)`, with their angles (skipped ones left out).
pub fn rotations(objects: &[Object], count: usize) -> Vec<(f32, Vec<Object>)> {
    let c = centroid(objects);
    angles(count).into_iter().filter_map(|a| rotate(objects, a, c).map(|r| (a, r))).collect()
}

/// An "easy" Furthest question: the furthest object (from the question's object) at least twice as far as the
/// second furthest.
pub fn is_easy(objects: &[Object], colour: usize) -> bool {
    let me = &objects[colour];
    let (mut first, mut second) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for o in objects.iter().filter(|o| o.colour != colour) {
        let d = me.dist2(o);
        if d > first {
            second = first;
            first = d;
        } else if d > second {
            second = d;
        }
    }
    // Squared distances: d1 >= 2 d2  <=>  d1^2 >= 4 d2^2.
    first >= 4.0 * second
}

/// `n` new random scenes (the generator's rules), each with a random colour whose Furthest question is easy:
/// scene and colour are drawn again together until it is. Deterministic per seed.
pub fn easy_dataset(n: usize, seed: u64) -> Vec<(Vec<Object>, Question)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| loop {
            let scene = random_scene(&mut rng);
            let colour = rng.gen_range(0..OBJECTS);
            if is_easy(&scene, colour) {
                break (scene, Question { colour, kind: Kind::Furthest });
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::data::{Shape, SortOfClevr};
    use super::*;

    fn pairwise(objects: &[Object]) -> Vec<f32> {
        let mut d = Vec::new();
        for (i, a) in objects.iter().enumerate() {
            for b in &objects[i + 1..] {
                d.push(a.dist2(b).sqrt());
            }
        }
        d
    }

    #[test]
    fn rotation_keeps_distances_and_the_furthest_answer() {
        let data = SortOfClevr::generate(50, 3);
        let mut rng = StdRng::seed_from_u64(0);
        let mut checked = 0;
        for scene in &data.scenes {
            let c = centroid(scene);
            for _ in 0..20 {
                let angle = rng.gen_range(0.0..std::f32::consts::TAU);
                let Some(r) = rotate(scene, angle, c) else { continue };
                checked += 1;
                for (a, b) in pairwise(scene).iter().zip(pairwise(&r)) {
                    assert!((a - b).abs() < 1e-3, "distance {a} became {b}");
                }
                assert!((centroid(&r).0 - c.0).abs() < 1e-3 && (centroid(&r).1 - c.1).abs() < 1e-3);
                for colour in 0..OBJECTS {
                    let q = Question { colour, kind: Kind::Furthest };
                    assert_eq!(is_easy(scene, colour), is_easy(&r, colour));
                    if is_easy(scene, colour) {
                        assert_eq!(q.answer(scene), q.answer(&r));
                    }
                }
                for (o, p) in scene.iter().zip(&r) {
                    assert_eq!((o.colour, o.shape), (p.colour, p.shape));
                }
            }
        }
        assert!(checked > 300, "only {checked} valid rotations");
    }

    #[test]
    fn rotation_by_hand_and_out_of_range() {
        let o = |colour, x, y| Object { colour, shape: Shape::Square, x, y };
        let scene = [o(0, 50.0, 37.0), o(1, 37.0, 37.0)];
        // A quarter turn about (37, 37) with y pointing down: (13, 0) -> (0, 13).
        let r = rotate(&scene, std::f32::consts::FRAC_PI_2, (37.0, 37.0)).unwrap();
        assert!((r[0].x - 37.0).abs() < 1e-4 && (r[0].y - 50.0).abs() < 1e-4, "{r:?}");
        assert_eq!((r[1].x, r[1].y), (37.0, 37.0));
        assert_eq!(rotate(&scene, 0.0, (37.0, 37.0)).unwrap(), scene.to_vec());
        // (69, 69) is 45 px from (37, 37): an eighth of a turn puts it at (37, 82), outside.
        let corner = [o(0, 69.0, 69.0), o(1, 37.0, 37.0)];
        assert!(rotate(&corner, std::f32::consts::FRAC_PI_4, (37.0, 37.0)).is_none());
        assert!(rotate(&corner, -std::f32::consts::FRAC_PI_4, (37.0, 37.0)).is_none());
        // A half turn maps x to 2 cx - x: (69, 40) about (38, 40) lands at (7, 40), about (36, 40) at (3, 40).
        let right = [o(0, 69.0, 40.0)];
        assert!((rotate(&right, std::f32::consts::PI, (38.0, 40.0)).unwrap()[0].x - 7.0).abs() < 1e-4);
        assert!(rotate(&right, std::f32::consts::PI, (36.0, 40.0)).is_none());
        let kept = rotations(&corner, ROTATIONS);
        assert!(!kept.is_empty() && kept.len() < ROTATIONS, "{}", kept.len());
    }

    #[test]
    fn angles_are_evenly_spaced() {
        for count in [1, 4, 7, ROTATIONS] {
            let a = angles(count);
            assert_eq!(a.len(), count);
            assert_eq!(a[0], 0.0);
            let step = std::f32::consts::TAU / count as f32;
            for w in a.windows(2) {
                assert!((w[1] - w[0] - step).abs() < 1e-5, "{w:?}");
            }
            assert!(*a.last().unwrap() < std::f32::consts::TAU);
            assert!((a.last().unwrap() + step - std::f32::consts::TAU).abs() < 1e-5);
        }
        assert!((angles(4)[1] - std::f32::consts::FRAC_PI_2).abs() < 1e-7);
    }

    #[test]
    fn easy_by_hand() {
        let o = |colour, x: f32| Object { colour, shape: Shape::Circle, x, y: 10.0 };
        // From red at 10: others at 20, 22, 24, 26 and 52 (42 = 2.6 x 16) -> easy; at 42 (32 = 2 x 16) -> easy
        // (boundary); at 40 (30 < 32) -> not.
        let mut s = vec![o(0, 10.0), o(1, 20.0), o(2, 22.0), o(3, 24.0), o(4, 26.0), o(5, 52.0)];
        assert!(is_easy(&s, 0));
        s[5].x = 42.0;
        assert!(is_easy(&s, 0));
        s[5].x = 40.0;
        assert!(!is_easy(&s, 0));
        // From blue at 22: yellow at 18, red at 12 -> not easy.
        assert!(!is_easy(&s, 2));
    }

    #[test]
    fn easy_dataset_is_easy_and_deterministic() {
        let a = easy_dataset(200, 4);
        let b = easy_dataset(200, 4);
        let c = easy_dataset(200, 5);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut colours = [0usize; OBJECTS];
        let mut answers = [0usize; 2];
        for (scene, q) in &a {
            assert_eq!(q.kind, Kind::Furthest);
            assert!(is_easy(scene, q.colour));
            colours[q.colour] += 1;
            answers[q.answer(scene) - 2] += 1;
            for (i, o) in scene.iter().enumerate() {
                assert_eq!(o.colour, i);
                assert!(scene[..i].iter().all(|p| o.dist2(p) >= 100.0));
            }
        }
        assert!(colours.iter().all(|&n| n > 10), "{colours:?}");
        assert!(answers.iter().all(|&n| n > 50), "{answers:?}");
        // Random questions are not all easy, so the filter does something.
        let data = SortOfClevr::generate(200, 4);
        let easy = data.scenes.iter().filter(|s| is_easy(s, 0)).count();
        assert!(easy < 150, "{easy} of 200 random red questions are easy");
    }

    #[test]
    fn placing_keeps_distances_lands_inside_and_leaves_fitting_scenes_alone() {
        let data = SortOfClevr::generate(40, 9);
        for scene in &data.scenes {
            assert_eq!(place(scene).as_deref(), Some(scene.as_slice()), "a generated scene already fits");
            let c = centroid(scene);
            for a in angles(36) {
                let turned = turn(scene, a, c);
                match rotate_placed(scene, a, c) {
                    Some(placed) => {
                        assert!(placed.iter().all(|o| inside(o.x) && inside(o.y)));
                        for (d0, d1) in pairwise(scene).iter().zip(pairwise(&placed)) {
                            assert!((d0 - d1).abs() < 1e-3, "{d0} vs {d1}");
                        }
                        if let Some(r) = rotate(scene, a, c) {
                            assert_eq!(r, placed, "a turn that stays inside is not moved");
                        }
                    }
                    None => {
                        let wide = |f: fn(&Object) -> f32| {
                            let v: Vec<f32> = turned.iter().map(f).collect();
                            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
                        };
                        assert!(wide(|o| o.x) > 65.0 || wide(|o| o.y) > 65.0, "skipped only when too wide");
                    }
                }
            }
        }
    }

    #[test]
    fn placing_evaluates_most_rotations_of_easy_scenes() {
        // Without placement only about a fifth of the angles of an easy scene stay inside the image.
        let (mut placed, mut kept, mut total) = (0usize, 0usize, 0usize);
        for (scene, _) in easy_dataset(30, 4) {
            let c = centroid(&scene);
            for a in angles(72) {
                placed += usize::from(rotate_placed(&scene, a, c).is_some());
                kept += usize::from(rotate(&scene, a, c).is_some());
                total += 1;
            }
        }
        eprintln!("easy scenes: {placed} of {total} angles evaluated with placement, {kept} without");
        assert!(placed > kept && placed * 10 >= total * 6, "{placed} / {total}");
    }
}
