//! The 2-D shapes block-pushing environment of C-SWM (Kipf et al., ICLR 2020), after the public reference's
//! `envs/block_pushing.py` with `render_type='shapes'`, written here so that it needs no download.
//!
//! - A 5 x 5 grid holds 5 objects, one per cell at most. Object `i` is a circle (`i % 3 == 0`), a triangle
//!   (`i % 3 == 1`) or a square (`i % 3 == 2`), in its own colour: the first five colours of matplotlib's
//!   `Set1` (red, blue, green, purple, orange), which the reference takes from `get_colors('Set1', 9)`; they
//!   are whole multiples of 1/255, so a frame stored as bytes is exact.
//! - 20 actions: action `a` moves object `a / 4` one cell in direction `a % 4`: 0 up (row - 1), 1 right
//!   (col + 1), 2 down (row + 1), 3 left (col - 1), the reference's `[(-1, 0), (0, 1), (1, 0), (0, -1)]`.
//!   A move out of the grid or onto another object does nothing.
//! - Reset: objects are placed in order, each uniformly on the grid, drawn again while its cell is taken.
//! - A frame is `[3, 50, 50]` (channels first), each cell 10 x 10 pixels, black background. Pixel `(y, x)`
//!   of the cell at `(r0, c0) = (10 row, 10 col)` belongs to: a circle if `(y - r0 - 5)^2 + (x - c0 - 5)^2 <
//!   25` (skimage's `circle(r0 + 5, c0 + 5, 5)`); a triangle (apex up, the reference's polygon `(r0, c0 + 5),
//!   (r0 + 10, c0), (r0 + 10, c0 + 10)`) if `2 |x - c0 - 5| <= y - r0`; a square if it lies in the cell.
//!   skimage's polygon fill also takes the square's far edge (11 x 11 pixels, overlapping the next cell by
//!   one row and column); ours stays inside its cell, so objects never overlap in a frame.
//! - Episodes: a random policy (actions uniform over the 20). The reference uses a single frame as the
//!   observation for the block-pushing environments (its `data_gen/env.py` stacks two frames only with
//!   `--atari`), so a shapes observation is one frame, 3 x 50 x 50 (stack 1). Its data: 1,000 training
//!   episodes of 100 steps (seed 1) and 10,000 evaluation episodes of 10 steps (seed 2). Here one seeded
//!   `StdRng` drives placement and policy (the reference draws placement from NumPy's global generator and
//!   actions from the action space's), so a data set is a function of `(episodes, steps, seed)`.

use super::data::{Episodes, Frames};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Cells per side of the grid.
pub const GRID: usize = 5;
/// Objects on the grid.
pub const OBJECTS: usize = 5;
/// Pixels per cell side.
pub const CELL: usize = 10;
/// Frame side in pixels.
pub const SIDE: usize = GRID * CELL;
/// Move directions per object.
pub const DIRECTIONS: usize = 4;
/// Actions: 4 directions for each of the 5 objects.
pub const NUM_ACTIONS: usize = DIRECTIONS * OBJECTS;
/// Bytes in one `[3, 50, 50]` frame.
pub const FRAME_LEN: usize = 3 * SIDE * SIDE;
/// `(row, col)` offsets of the directions up, right, down, left.
pub const MOVES: [(isize, isize); DIRECTIONS] = [(-1, 0), (0, 1), (1, 0), (0, -1)];
/// The objects' colours: matplotlib's `Set1` colours 0 to 4.
pub const COLOURS: [[u8; 3]; OBJECTS] = [[228, 26, 28], [55, 126, 184], [77, 175, 74], [152, 78, 163], [255, 127, 0]];

/// The reference's training data: episodes, steps per episode and seed.
pub const TRAIN: (usize, usize, u64) = (1000, 100, 1);
/// The reference's evaluation data: episodes, steps per episode and seed.
pub const EVAL: (usize, usize, u64) = (10_000, 10, 2);

/// An object's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Triangle,
    Square,
}

/// The shape of object `i`.
pub fn shape_of(i: usize) -> Shape {
    match i % 3 {
        0 => Shape::Circle,
        1 => Shape::Triangle,
        _ => Shape::Square,
    }
}

/// The environment's state: each object's `(row, col)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShapesState {
    pub positions: [(u8, u8); OBJECTS],
}

impl ShapesState {
    /// A state from positions; panics if one is off the grid or two share a cell.
    pub fn new(positions: [(u8, u8); OBJECTS]) -> Self {
        for (i, &(r, c)) in positions.iter().enumerate() {
            assert!((r as usize) < GRID && (c as usize) < GRID, "shapes: object {i} at ({r}, {c}) is off the grid");
            assert!(!positions[..i].contains(&(r, c)), "shapes: object {i} at ({r}, {c}) shares a cell");
        }
        ShapesState { positions }
    }

    /// The reference's reset: each object in turn uniformly on a free cell.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut positions = [(u8::MAX, u8::MAX); OBJECTS];
        for i in 0..OBJECTS {
            loop {
                let p = (rng.gen_range(0..GRID) as u8, rng.gen_range(0..GRID) as u8);
                if !positions[..i].contains(&p) {
                    positions[i] = p;
                    break;
                }
            }
        }
        ShapesState { positions }
    }

    /// Apply action `a` (object `a / 4`, direction `a % 4`); returns whether the object moved (a move into a
    /// wall or onto another object does nothing). Panics for `a >= 20`.
    pub fn step(&mut self, action: usize) -> bool {
        assert!(action < NUM_ACTIONS, "shapes: action {action} is not below {NUM_ACTIONS}");
        let (obj, (dr, dc)) = (action / DIRECTIONS, MOVES[action % DIRECTIONS]);
        let (r, c) = self.positions[obj];
        let (nr, nc) = (r as isize + dr, c as isize + dc);
        if nr < 0 || nc < 0 || nr >= GRID as isize || nc >= GRID as isize {
            return false;
        }
        let target = (nr as u8, nc as u8);
        if self.positions.contains(&target) {
            return false;
        }
        self.positions[obj] = target;
        true
    }

    /// Render into `out` (`[3, 50, 50]` bytes, channels first; overwritten).
    pub fn render_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), FRAME_LEN, "shapes: a frame holds {FRAME_LEN} bytes");
        out.fill(0);
        let plane = SIDE * SIDE;
        for (i, &(r, c)) in self.positions.iter().enumerate() {
            let (r0, c0) = (r as usize * CELL, c as usize * CELL);
            for dy in 0..CELL {
                for dx in 0..CELL {
                    if covers(shape_of(i), dy, dx) {
                        let p = (r0 + dy) * SIDE + c0 + dx;
                        for (ch, &v) in COLOURS[i].iter().enumerate() {
                            out[ch * plane + p] = v;
                        }
                    }
                }
            }
        }
    }

    /// The frame as bytes.
    pub fn render(&self) -> Vec<u8> {
        let mut out = vec![0; FRAME_LEN];
        self.render_into(&mut out);
        out
    }
}

/// Whether pixel `(dy, dx)` of a cell belongs to a shape drawn in it.
fn covers(shape: Shape, dy: usize, dx: usize) -> bool {
    let half = (CELL / 2) as isize;
    let (y, x) = (dy as isize, dx as isize);
    match shape {
        Shape::Circle => (y - half).pow(2) + (x - half).pow(2) < half * half,
        Shape::Triangle => 2 * (x - half).abs() <= y,
        Shape::Square => true,
    }
}

/// `episodes` random-policy episodes of `steps` transitions each, from `seed`: per episode a reset and
/// `steps` uniform actions. Frames are rendered when read (the data holds the states).
pub fn generate(episodes: usize, steps: usize, seed: u64) -> Episodes {
    assert!(episodes > 0 && steps > 0, "shapes: need at least one episode of one step");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut states = Vec::with_capacity(episodes * (steps + 1));
    let mut actions = Vec::with_capacity(episodes * steps);
    for _ in 0..episodes {
        let mut s = ShapesState::random(&mut rng);
        states.push(s);
        for _ in 0..steps {
            let a = rng.gen_range(0..NUM_ACTIONS);
            s.step(a);
            actions.push(a);
            states.push(s);
        }
    }
    Episodes::new(format!("shapes-seed{seed}"), episodes, steps, 1, NUM_ACTIONS, SIDE, actions, Frames::Shapes(states))
        .expect("shapes episodes are consistent")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ShapesState {
        ShapesState::new([(0, 0), (0, 1), (2, 2), (4, 4), (1, 0)])
    }

    #[test]
    fn walls_stop_a_move() {
        let mut s = state();
        // Object 0 at the top-left corner: up and left hit walls.
        assert!(!s.step(0));
        assert!(!s.step(3));
        // Object 3 at the bottom-right corner: right and down hit walls.
        assert!(!s.step(3 * 4 + 1));
        assert!(!s.step(3 * 4 + 2));
        assert_eq!(s, state());
    }

    #[test]
    fn objects_block_each_other_and_free_moves_move() {
        let mut s = state();
        // Object 0 right onto object 1, down onto object 4: blocked.
        assert!(!s.step(1));
        assert!(!s.step(2));
        // Object 1 moves in every direction it can.
        assert!(s.step(4 + 2));
        assert_eq!(s.positions[1], (1, 1));
        assert!(s.step(4 + 1));
        assert_eq!(s.positions[1], (1, 2));
        // Object 1 down onto object 2 at (2, 2): blocked; up: free.
        assert!(!s.step(4 + 2));
        assert!(s.step(4));
        assert_eq!(s.positions[1], (0, 2));
        // Object 2 moves left.
        assert!(s.step(2 * 4 + 3));
        assert_eq!(s.positions[2], (2, 1));
        assert_eq!(s.positions[0], (0, 0));
    }

    #[test]
    fn rendering_puts_each_object_in_its_cell_and_colour() {
        let s = state();
        let f = s.render();
        let px = |ch: usize, y: usize, x: usize| f[ch * SIDE * SIDE + y * SIDE + x];
        // Square (object 2) at (2, 2): its whole cell, green.
        for y in 20..30 {
            for x in 20..30 {
                assert_eq!([px(0, y, x), px(1, y, x), px(2, y, x)], COLOURS[2]);
            }
        }
        // Circle (object 0) at (0, 0): centre coloured, corner black.
        assert_eq!([px(0, 5, 5), px(1, 5, 5), px(2, 5, 5)], COLOURS[0]);
        assert_eq!([px(0, 0, 0), px(1, 0, 0), px(2, 0, 0)], [0, 0, 0]);
        // Triangle (object 1) at (0, 1): apex at the top centre, wide at the bottom.
        assert_eq!(px(0, 0, 15), COLOURS[1][0]);
        assert_eq!(px(2, 0, 11), 0);
        assert_eq!(px(2, 9, 11), COLOURS[1][2]);
        // Empty cell (3, 3): black.
        assert!((30..40).all(|y| (30..40).all(|x| (0..3).all(|ch| px(ch, y, x) == 0))));
        // Pixels per object: circle 69 (skimage's radius-5 disc), triangle 50, square 100.
        let count = |colour: [u8; 3]| {
            (0..SIDE * SIDE).filter(|&p| (0..3).all(|ch| f[ch * SIDE * SIDE + p] == colour[ch])).count()
        };
        assert_eq!(count(COLOURS[0]), 69);
        assert_eq!(count(COLOURS[1]), 50);
        assert_eq!(count(COLOURS[2]), 100);
    }

    #[test]
    fn episodes_are_deterministic_per_seed_and_follow_the_rules() {
        let a = generate(4, 20, 7);
        let b = generate(4, 20, 7);
        let c = generate(4, 20, 8);
        let (Frames::Shapes(sa), Frames::Shapes(sb), Frames::Shapes(sc)) = (a.frames(), b.frames(), c.frames()) else {
            panic!("shapes data holds states")
        };
        assert_eq!(sa, sb);
        assert_eq!(a.actions(), b.actions());
        assert_ne!(sa, sc);
        // Every recorded transition is the environment's step from the previous state.
        for e in 0..4 {
            for t in 0..20 {
                let mut s = sa[e * 21 + t];
                s.step(a.action(e, t));
                assert_eq!(s, sa[e * 21 + t + 1]);
                let p = s.positions;
                assert!((0..OBJECTS).all(|i| (i + 1..OBJECTS).all(|j| p[i] != p[j])));
            }
        }
        assert!(a.actions().iter().all(|&x| x < NUM_ACTIONS));
    }
}
