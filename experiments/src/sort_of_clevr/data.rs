//! The Sort-of-CLEVR data set of the paper's Sec. 3.1, with the rules of the relational-network reference
//! generator (kimhc6028/relational-networks, `sort_of_clevr_generator.py`).
//!
//! A 75x75 RGB image in [0, 1] on white holds six objects, one per colour, in the order red (255,0,0),
//! green (0,255,0), blue (0,0,255), orange (255,156,0), gray (128,128,128), yellow (255,255,0). Each object draws
//! an integer centre, uniform in `5..70` on both axes (numpy's `randint(size, img_size - size)`), again and again
//! until its squared distance to every earlier centre is at least `(2 * 5)^2 = 100`, then is a square (p = 0.5:
//! the 11x11 pixels with `|col - x| <= 5` and `|row - y| <= 5`, like OpenCV's filled rectangle from `(x-5, y-5)` to
//! `(x+5, y+5)`) or else a disc of radius 5 (pixels with `(col-x)^2 + (row-y)^2 <= 25`; OpenCV's rasteriser
//! differs slightly on the rim). `x` is the column, `y` the row; later objects paint over earlier ones.
//!
//! Each image comes with 10 non-relational and then 10 relational questions, each with a uniform colour and a
//! uniform subtype of three. A question is 11 numbers: `[0:6]` the colour one-hot, `[6]` non-relational flag,
//! `[7]` relational flag, `[8 + subtype]`. Answers index `[yes, no, rectangle, circle, 1, 2, 3, 4, 5, 6]`:
//! - shape of the object: rectangle / circle;
//! - is it on the left (`x < 37.5`): yes / no (the Python 2 reference compared with `75 / 2 = 37`, so centres
//!   with `x = 37` answered "no" there; we follow the Python 3 reading, 37.5);
//! - is it on top (`y < 37.5`): yes / no;
//! - shape of the closest other object, of the furthest object (Euclidean distance between centres; ties go to
//!   the first object in colour order, as `list.index` does): rectangle / circle;
//! - how many objects have its shape, itself included: answer `3 + count`.
//!
//! Images are not stored: [`SortOfClevr`] keeps the scenes and renders the images of a batch on demand.

use ndarray::ArrayD;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Image side in pixels.
pub const SIZE: usize = 75;
/// Length of one `[3, 75, 75]` image.
pub const IMAGE_LEN: usize = 3 * SIZE * SIZE;
/// Length of an encoded question.
pub const QUESTION_DIM: usize = 11;
/// Number of answer classes.
pub const ANSWERS: usize = 10;
/// Half the side of a square, radius of a circle.
pub const OBJECT_SIZE: f32 = 5.0;
/// Objects (and colours) per scene.
pub const OBJECTS: usize = 6;
/// Non-relational questions per scene; as many relational ones follow.
pub const QUESTIONS_PER_TYPE: usize = 10;
/// Samples (questions) per scene.
pub const SAMPLES_PER_SCENE: usize = 2 * QUESTIONS_PER_TYPE;
pub const COLOUR_NAMES: [&str; 6] = ["red", "green", "blue", "orange", "gray", "yellow"];
/// The colours as RGB bytes, in colour-index order.
pub const COLOURS: [[u8; 3]; 6] =
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 156, 0], [128, 128, 128], [255, 255, 0]];
/// Answer classes.
pub const ANSWER_NAMES: [&str; ANSWERS] = ["yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6"];

/// Smallest and largest centre coordinate the generator draws (`5..70`).
const MIN_CENTRE: i32 = 5;
const MAX_CENTRE_EXCLUSIVE: i32 = 70;
/// The minimum squared distance between two centres, `(2 * OBJECT_SIZE)^2`.
const MIN_DIST2: i32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Square,
    Circle,
}

impl Shape {
    /// The answer naming this shape: 2 rectangle, 3 circle.
    pub fn answer(self) -> usize {
        match self {
            Shape::Square => 2,
            Shape::Circle => 3,
        }
    }
}

/// Centre in pixels (x = column, y = row); f32 so that rotated positions can be represented (rendering rounds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Object {
    pub colour: usize,
    pub shape: Shape,
    pub x: f32,
    pub y: f32,
}

impl Object {
    /// Squared Euclidean distance between two centres.
    pub fn dist2(&self, other: &Object) -> f32 {
        (self.x - other.x).powi(2) + (self.y - other.y).powi(2)
    }
}

/// The six question kinds: three non-relational (subtypes 0..3), then three relational (subtypes 0..3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Shape,
    Left,
    Top,
    Closest,
    Furthest,
    Count,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Shape, Kind::Left, Kind::Top, Kind::Closest, Kind::Furthest, Kind::Count];

    pub fn relational(self) -> bool {
        matches!(self, Kind::Closest | Kind::Furthest | Kind::Count)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Shape => "shape",
            Kind::Left => "left",
            Kind::Top => "top",
            Kind::Closest => "closest",
            Kind::Furthest => "furthest",
            Kind::Count => "count",
        }
    }

    /// The subtype within its type (0..3), position `8 + subtype` of the question vector.
    pub fn subtype(self) -> usize {
        match self {
            Kind::Shape | Kind::Closest => 0,
            Kind::Left | Kind::Furthest => 1,
            Kind::Top | Kind::Count => 2,
        }
    }

    /// The kind with this type and subtype. Panics if `subtype >= 3`.
    pub fn from_parts(relational: bool, subtype: usize) -> Kind {
        assert!(subtype < 3, "Kind::from_parts: subtype {subtype} is not in 0..3");
        Kind::ALL[subtype + if relational { 3 } else { 0 }]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub colour: usize,
    pub kind: Kind,
}

impl Question {
    /// The 11-number encoding: colour one-hot, type flag, subtype one-hot.
    pub fn encode(&self) -> [f32; QUESTION_DIM] {
        assert!(self.colour < OBJECTS, "Question::encode: colour {} is not in 0..6", self.colour);
        let mut q = [0.0; QUESTION_DIM];
        q[self.colour] = 1.0;
        q[if self.kind.relational() { 7 } else { 6 }] = 1.0;
        q[8 + self.kind.subtype()] = 1.0;
        q
    }

    /// The answer index about `objects`, which are indexed by colour (`objects[c].colour == c`). Positions are
    /// used as stored (unrounded).
    pub fn answer(&self, objects: &[Object]) -> usize {
        assert!(self.colour < objects.len(), "Question::answer: colour {} but {} objects", self.colour, objects.len());
        let me = &objects[self.colour];
        assert_eq!(me.colour, self.colour, "Question::answer: objects must be indexed by colour");
        let centre = SIZE as f32 / 2.0;
        let yes_no = |b: bool| if b { 0 } else { 1 };
        match self.kind {
            Kind::Shape => me.shape.answer(),
            Kind::Left => yes_no(me.x < centre),
            Kind::Top => yes_no(me.y < centre),
            Kind::Closest | Kind::Furthest => {
                let closest = self.kind == Kind::Closest;
                let mut best: Option<(usize, f32)> = None;
                for (i, o) in objects.iter().enumerate() {
                    if i == self.colour {
                        continue;
                    }
                    let d = me.dist2(o);
                    // Strict comparison: ties go to the first object, as `list.index(min/max)` does.
                    let better = best.is_none_or(|(_, b)| if closest { d < b } else { d > b });
                    if better {
                        best = Some((i, d));
                    }
                }
                let (i, _) = best.expect("Question::answer: a relational question needs another object");
                objects[i].shape.answer()
            }
            Kind::Count => 3 + objects.iter().filter(|o| o.shape == me.shape).count(),
        }
    }
}

/// The name of answer class `a`: "yes", "no", "rectangle", "circle", "1" .. "6".
pub fn answer_name(a: usize) -> &'static str {
    ANSWER_NAMES[a]
}

/// Flat in-plane pixel indices covered by `o` (rounded to the nearest pixel), clipped to the image.
fn footprint(o: &Object) -> impl Iterator<Item = usize> {
    let (x, y) = (o.x.round() as isize, o.y.round() as isize);
    let r = OBJECT_SIZE as isize;
    let shape = o.shape;
    (y - r..=y + r).flat_map(move |row| {
        (x - r..=x + r).filter_map(move |col| {
            let inside = shape == Shape::Square || (col - x).pow(2) + (row - y).pow(2) <= r * r;
            let on_image = (0..SIZE as isize).contains(&row) && (0..SIZE as isize).contains(&col);
            (inside && on_image).then(|| row as usize * SIZE + col as usize)
        })
    })
}

/// Render a scene (CHW, white background); positions are rounded to the nearest pixel.
pub fn render(objects: &[Object]) -> Vec<f32> {
    let mut img = vec![0.0; IMAGE_LEN];
    render_into(objects, &mut img);
    img
}

/// Render a scene into `out` (`IMAGE_LEN` values, overwritten).
pub fn render_into(objects: &[Object], out: &mut [f32]) {
    assert_eq!(out.len(), IMAGE_LEN, "render_into: buffer of {} values, expected {IMAGE_LEN}", out.len());
    out.fill(1.0);
    let plane = SIZE * SIZE;
    for o in objects {
        let rgb = COLOURS[o.colour].map(|v| v as f32 / 255.0);
        for p in footprint(o) {
            for (c, v) in rgb.iter().enumerate() {
                out[c * plane + p] = *v;
            }
        }
    }
}

/// A random scene with the reference's rules (see the module docs), indexed by colour.
pub fn random_scene(rng: &mut impl Rng) -> Vec<Object> {
    let mut centres: Vec<(i32, i32)> = Vec::with_capacity(OBJECTS);
    let mut objects = Vec::with_capacity(OBJECTS);
    for colour in 0..OBJECTS {
        let (x, y) = loop {
            let x = rng.gen_range(MIN_CENTRE..MAX_CENTRE_EXCLUSIVE);
            let y = rng.gen_range(MIN_CENTRE..MAX_CENTRE_EXCLUSIVE);
            if centres.iter().all(|&(cx, cy)| (x - cx).pow(2) + (y - cy).pow(2) >= MIN_DIST2) {
                break (x, y);
            }
        };
        centres.push((x, y));
        let shape = if rng.gen::<f64>() < 0.5 { Shape::Square } else { Shape::Circle };
        objects.push(Object { colour, shape, x: x as f32, y: y as f32 });
    }
    objects
}

/// One question of the dataset: which scene, the question, its answer.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub scene: usize,
    pub question: Question,
    pub answer: usize,
}

/// A dataset: scenes (images are rendered on demand, so 100,000 images need no memory) and 20 samples per scene.
#[derive(Clone, Debug, Default)]
pub struct SortOfClevr {
    pub scenes: Vec<Vec<Object>>,
    /// Scene `s` owns samples `20 s .. 20 s + 20`: 10 non-relational, then 10 relational.
    pub samples: Vec<Sample>,
}

impl SortOfClevr {
    /// `images` scenes and their questions drawn from one `StdRng` seeded with `seed`, scene after scene, so the
    /// same seed gives the same data and a longer set starts with the shorter one.
    pub fn generate(images: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data =
            SortOfClevr { scenes: Vec::with_capacity(images), samples: Vec::with_capacity(images * SAMPLES_PER_SCENE) };
        for scene in 0..images {
            let objects = random_scene(&mut rng);
            for relational in [false, true] {
                for _ in 0..QUESTIONS_PER_TYPE {
                    let colour = rng.gen_range(0..OBJECTS);
                    let kind = Kind::from_parts(relational, rng.gen_range(0..3));
                    let question = Question { colour, kind };
                    data.samples.push(Sample { scene, question, answer: question.answer(&objects) });
                }
            }
            data.scenes.push(objects);
        }
        data
    }

    /// Number of samples (questions).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The image of scene `s`, `[3, 75, 75]` flat.
    pub fn image(&self, s: usize) -> Vec<f32> {
        render(&self.scenes[s])
    }

    /// The samples `indices` as a batch: images [B,3,75,75], questions [B,11], answers, kinds.
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let items: Vec<(&[Object], Question)> = indices
            .iter()
            .map(|&i| {
                let s = &self.samples[i];
                (self.scenes[s.scene].as_slice(), s.question)
            })
            .collect();
        batch_of(&items)
    }
}

/// A batch of samples ready for a model.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, 3, 75, 75]`.
    pub images: ArrayD<f32>,
    /// `[B, 11]`.
    pub questions: ArrayD<f32>,
    pub answers: Vec<usize>,
    pub kinds: Vec<Kind>,
}

/// Build a batch from explicit (scene, question) pairs (used by robustness tests); answers are computed.
pub fn batch_of(items: &[(&[Object], Question)]) -> Batch {
    let b = items.len();
    let mut images = vec![0.0; b * IMAGE_LEN];
    let mut questions = Vec::with_capacity(b * QUESTION_DIM);
    for ((objects, q), out) in items.iter().zip(images.chunks_exact_mut(IMAGE_LEN)) {
        render_into(objects, out);
        questions.extend(q.encode());
    }
    Batch {
        images: ArrayD::from_shape_vec(vec![b, 3, SIZE, SIZE], images).expect("image batch"),
        questions: ArrayD::from_shape_vec(vec![b, QUESTION_DIM], questions).expect("question batch"),
        answers: items.iter().map(|(o, q)| q.answer(o)).collect(),
        kinds: items.iter().map(|(_, q)| q.kind).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(colour: usize, shape: Shape, x: f32, y: f32) -> Object {
        Object { colour, shape, x, y }
    }

    fn pixel(img: &[f32], row: usize, col: usize) -> [f32; 3] {
        [0, 1, 2].map(|c| img[c * SIZE * SIZE + row * SIZE + col])
    }

    const WHITE: [f32; 3] = [1.0; 3];

    #[test]
    fn deterministic_per_seed_and_prefix_stable() {
        let a = SortOfClevr::generate(30, 5);
        let b = SortOfClevr::generate(30, 5);
        let c = SortOfClevr::generate(30, 6);
        let long = SortOfClevr::generate(40, 5);
        assert_eq!(a.scenes, b.scenes);
        assert_ne!(a.scenes, c.scenes);
        assert_eq!(a.len(), 30 * SAMPLES_PER_SCENE);
        assert_eq!(&long.scenes[..30], &a.scenes[..]);
        for (x, y) in a.samples.iter().zip(&b.samples) {
            assert_eq!((x.scene, x.question, x.answer), (y.scene, y.question, y.answer));
        }
        for (x, y) in a.samples.iter().zip(&long.samples) {
            assert_eq!((x.scene, x.question, x.answer), (y.scene, y.question, y.answer));
        }
        assert!(a.samples.iter().zip(&c.samples).any(|(x, y)| x.question != y.question));
    }

    #[test]
    fn scenes_follow_the_reference_rules() {
        let data = SortOfClevr::generate(500, 1);
        let mut squares = 0;
        let (mut min_x, mut max_x) = (f32::MAX, f32::MIN);
        for objects in &data.scenes {
            assert_eq!(objects.len(), OBJECTS);
            for (i, o) in objects.iter().enumerate() {
                assert_eq!(o.colour, i);
                assert_eq!(o.x, o.x.round());
                assert!((5.0..70.0).contains(&o.x) && (5.0..70.0).contains(&o.y), "{o:?}");
                min_x = min_x.min(o.x).min(o.y);
                max_x = max_x.max(o.x).max(o.y);
                squares += (o.shape == Shape::Square) as usize;
                for p in &objects[..i] {
                    assert!(o.dist2(p) >= 100.0, "{o:?} and {p:?} are closer than 10 px");
                }
            }
        }
        assert_eq!((min_x, max_x), (5.0, 69.0), "centres should span 5..=69");
        let frac = squares as f64 / (500 * OBJECTS) as f64;
        assert!((frac - 0.5).abs() < 0.04, "square fraction {frac}");
    }

    #[test]
    fn questions_per_scene_and_answer_distribution() {
        let data = SortOfClevr::generate(1000, 2);
        let mut per_class = [0usize; ANSWERS];
        let mut per_kind = std::collections::HashMap::new();
        for (i, s) in data.samples.iter().enumerate() {
            assert_eq!(s.scene, i / SAMPLES_PER_SCENE);
            assert_eq!(s.question.kind.relational(), i % SAMPLES_PER_SCENE >= QUESTIONS_PER_TYPE);
            assert_eq!(s.answer, s.question.answer(&data.scenes[s.scene]));
            per_class[s.answer] += 1;
            *per_kind.entry(s.question.kind).or_insert(0usize) += 1;
            let allowed: &[usize] = match s.question.kind {
                Kind::Left | Kind::Top => &[0, 1],
                Kind::Shape | Kind::Closest | Kind::Furthest => &[2, 3],
                Kind::Count => &[4, 5, 6, 7, 8, 9],
            };
            assert!(allowed.contains(&s.answer), "{s:?}");
        }
        assert!(per_class.iter().all(|&n| n > 0), "every class should occur: {per_class:?}");
        // Every kind about a sixth of the samples (20,000 samples, 3,333 expected).
        for k in Kind::ALL {
            let n = per_kind[&k];
            assert!((3000..3700).contains(&n), "{k:?}: {n}");
        }
        // Counting with itself included: count = 1 + Binomial(5, 1/2), so frequencies rise to "3" and "4" and
        // fall again, with "1" and "6" at 1/32 of the count questions.
        let c = &per_class[4..];
        assert!(c[0] < c[1] && c[1] < c[2] && c[3] > c[4] && c[4] > c[5], "{c:?}");
        let expected = per_kind[&Kind::Count] as f64 / 32.0;
        for n in [c[0], c[5]] {
            assert!((n as f64 - expected).abs() < 0.5 * expected, "{c:?}, expected {expected} for 1 and 6");
        }
    }

    #[test]
    fn colours_render_at_the_centre_on_white() {
        let objects: Vec<Object> = (0..OBJECTS)
            .map(|c| obj(c, if c % 2 == 0 { Shape::Square } else { Shape::Circle }, 10.0 + 11.0 * c as f32, 20.0))
            .collect();
        let img = render(&objects);
        for (c, o) in objects.iter().enumerate() {
            let expected = COLOURS[c].map(|v| v as f32 / 255.0);
            assert_eq!(pixel(&img, o.y as usize, o.x as usize), expected, "{}", COLOUR_NAMES[c]);
        }
        assert_eq!(pixel(&img, 0, 0), WHITE);
        assert_eq!(pixel(&img, 60, 40), WHITE);
        assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(COLOURS[3], [255, 156, 0]);
        assert!((pixel(&img, 20, 43)[1] - 156.0 / 255.0).abs() < 1e-7);
        assert!((pixel(&img, 20, 54)[0] - 128.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn squares_are_11x11_and_circles_follow_the_radius_rule() {
        let sq = render(&[obj(2, Shape::Square, 30.0, 40.0)]);
        let ci = render(&[obj(0, Shape::Circle, 30.0, 40.0)]);
        let (mut n_sq, mut n_ci) = (0, 0);
        for row in 0..SIZE {
            for col in 0..SIZE {
                let (dx, dy) = (col as i32 - 30, row as i32 - 40);
                let in_sq = dx.abs() <= 5 && dy.abs() <= 5;
                let in_ci = dx * dx + dy * dy <= 25;
                assert_eq!(pixel(&sq, row, col), if in_sq { [0.0, 0.0, 1.0] } else { WHITE }, "({row}, {col})");
                assert_eq!(pixel(&ci, row, col), if in_ci { [1.0, 0.0, 0.0] } else { WHITE }, "({row}, {col})");
                n_sq += in_sq as usize;
                n_ci += in_ci as usize;
            }
        }
        assert_eq!((n_sq, n_ci), (121, 81));
        // Clipped at the border; positions rounded to the nearest pixel; later objects paint over earlier ones.
        let edge = render(&[obj(1, Shape::Square, 71.6, 2.4)]);
        let green = (0..SIZE * SIZE).filter(|&p| edge[p] == 0.0 && edge[SIZE * SIZE + p] == 1.0).count();
        assert_eq!(green, 8 * 8, "columns 67..=74, rows 0..=7 of the square at (72, 2)");
        assert_eq!(pixel(&edge, 0, 67), [0.0, 1.0, 0.0]);
        assert_eq!(pixel(&edge, 0, 66), WHITE);
        let both = render(&[obj(0, Shape::Square, 30.0, 30.0), obj(2, Shape::Square, 35.0, 30.0)]);
        assert_eq!(pixel(&both, 30, 31), [0.0, 0.0, 1.0]);
        assert_eq!(pixel(&both, 30, 29), [1.0, 0.0, 0.0]);
    }

    #[test]
    fn encodings_have_three_ones_in_place() {
        for colour in 0..OBJECTS {
            for kind in Kind::ALL {
                let q = Question { colour, kind }.encode();
                assert_eq!(q.iter().filter(|&&v| v == 1.0).count(), 3);
                assert_eq!(q.iter().filter(|&&v| v == 0.0).count(), QUESTION_DIM - 3);
                assert_eq!(q[colour], 1.0);
                assert_eq!(q[6], if kind.relational() { 0.0 } else { 1.0 });
                assert_eq!(q[7], if kind.relational() { 1.0 } else { 0.0 });
                assert_eq!(q[8 + kind.subtype()], 1.0);
                assert_eq!(Kind::from_parts(kind.relational(), kind.subtype()), kind);
            }
        }
        let q = Question { colour: 3, kind: Kind::Furthest }.encode();
        assert_eq!(q, [0., 0., 0., 1., 0., 0., 0., 1., 0., 1., 0.]);
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["shape", "left", "top", "closest", "furthest", "count"]);
        let answers: Vec<_> = (0..ANSWERS).map(answer_name).collect();
        assert_eq!(answers, ["yes", "no", "rectangle", "circle", "1", "2", "3", "4", "5", "6"]);
    }

    /// Red square at the top left; the others placed so that each relational answer is known by hand.
    fn hand_scene() -> Vec<Object> {
        vec![
            obj(0, Shape::Square, 10.0, 10.0), // red
            obj(1, Shape::Circle, 22.0, 10.0), // green: 12 from red (red's closest)
            obj(2, Shape::Square, 60.0, 65.0), // blue: furthest from red, from green
            obj(3, Shape::Circle, 37.0, 38.0), // orange
            obj(4, Shape::Circle, 38.0, 37.0), // gray
            obj(5, Shape::Circle, 10.0, 30.0), // yellow
        ]
    }

    #[test]
    fn answers_on_a_hand_built_scene() {
        let s = hand_scene();
        let a = |colour, kind| answer_name(Question { colour, kind }.answer(&s));
        assert_eq!(a(0, Kind::Shape), "rectangle");
        assert_eq!(a(1, Kind::Shape), "circle");
        // Left / top: x < 37.5, y < 37.5 (37 is left, 38 is not).
        assert_eq!(a(0, Kind::Left), "yes");
        assert_eq!(a(3, Kind::Left), "yes");
        assert_eq!(a(4, Kind::Left), "no");
        assert_eq!(a(2, Kind::Left), "no");
        assert_eq!(a(4, Kind::Top), "yes");
        assert_eq!(a(3, Kind::Top), "no");
        assert_eq!(a(2, Kind::Top), "no");
        // Closest excludes the object itself (distance 0).
        assert_eq!(a(0, Kind::Closest), "circle"); // green at 12
        assert_eq!(a(1, Kind::Closest), "rectangle"); // red at 12
        assert_eq!(a(3, Kind::Closest), "circle"); // gray at 1.4
                                                   // Furthest.
        assert_eq!(a(0, Kind::Furthest), "rectangle"); // blue
        assert_eq!(a(2, Kind::Furthest), "rectangle"); // red at (10, 10)
        assert_eq!(a(3, Kind::Furthest), "rectangle"); // red at 38.9 (blue is 35.5)
                                                       // Count, itself included: two squares, four circles.
        assert_eq!(a(0, Kind::Count), "2");
        assert_eq!(a(2, Kind::Count), "2");
        assert_eq!(a(5, Kind::Count), "4");
        let mut all_circles = s.clone();
        all_circles.iter_mut().for_each(|o| o.shape = Shape::Circle);
        assert_eq!(answer_name(Question { colour: 2, kind: Kind::Count }.answer(&all_circles)), "6");
        all_circles[4].shape = Shape::Square;
        assert_eq!(answer_name(Question { colour: 4, kind: Kind::Count }.answer(&all_circles)), "1");
    }

    #[test]
    fn ties_go_to_the_first_object() {
        // Green at the centre; red (square) and blue (circle) both at distance 20, others nearer or further.
        let s = vec![
            obj(0, Shape::Square, 20.0, 40.0),
            obj(1, Shape::Circle, 40.0, 40.0),
            obj(2, Shape::Circle, 60.0, 40.0),
            obj(3, Shape::Circle, 40.0, 25.0),
            obj(4, Shape::Circle, 40.0, 55.0),
            obj(5, Shape::Circle, 28.0, 28.0),
        ];
        assert_eq!(Question { colour: 1, kind: Kind::Furthest }.answer(&s), 2);
        let mut swapped = s.clone();
        swapped[0].shape = Shape::Circle;
        swapped[2].shape = Shape::Square;
        assert_eq!(Question { colour: 1, kind: Kind::Furthest }.answer(&swapped), 3);
    }

    #[test]
    fn batches_match_the_samples() {
        let data = SortOfClevr::generate(5, 9);
        let idx = [0, 19, 20, 57, 99];
        let b = data.batch(&idx);
        assert_eq!(b.images.shape(), &[5, 3, SIZE, SIZE]);
        assert_eq!(b.questions.shape(), &[5, QUESTION_DIM]);
        for (k, &i) in idx.iter().enumerate() {
            let s = &data.samples[i];
            assert_eq!(b.answers[k], s.answer);
            assert_eq!(b.kinds[k], s.question.kind);
            let img: Vec<f32> = b.images.index_axis(ndarray::Axis(0), k).iter().copied().collect();
            assert_eq!(img, data.image(s.scene));
            let q: Vec<f32> = b.questions.index_axis(ndarray::Axis(0), k).iter().copied().collect();
            assert_eq!(q, s.question.encode());
        }
    }
}
