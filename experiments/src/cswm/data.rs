//! Transition data for C-SWM: recorded episodes of equal length, shared by the 2-D shapes environment
//! (generated in Rust, [`super::shapes`]) and the Atari games (collected by `tools/atari/collect.sh`, read by
//! [`load_atari`]).
//!
//! An episode of `steps` transitions holds `steps + stack` RGB frames `f_0, f_1, ..` and `steps` actions.
//! Observation `t` (for `t` in `0..=steps`) stacks `stack` frames newest first: `[f(t + stack - 1), ..,
//! f(t)]`, `3 stack` channels in `[0, 1]` (bytes divided by 255). Transition `t` is (observation `t`, action
//! `t`, observation `t + 1`). Atari: stack 2 (the reference's `np.concatenate((ob, prev_ob))`); shapes: stack
//! 1 (the reference stores one frame for the block-pushing environments).

use super::shapes::{self, ShapesState};
use ndarray::ArrayD;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the frames come from.
#[derive(Clone, Debug)]
pub enum Frames {
    /// Stored RGB frames, bytes `[episodes, steps + stack, 3, side, side]`.
    Pixels(Vec<u8>),
    /// 2-D shapes states `[episodes, steps + stack]`, rendered when read.
    Shapes(Vec<ShapesState>),
}

/// One mini-batch of transitions: observations `[B, C, side, side]`, actions, next observations.
#[derive(Clone, Debug)]
pub struct Batch {
    pub obs: ArrayD<f32>,
    pub actions: Vec<usize>,
    pub next_obs: ArrayD<f32>,
}

/// Recorded episodes of `steps` transitions each (see the module documentation).
#[derive(Clone, Debug)]
pub struct Episodes {
    name: String,
    episodes: usize,
    steps: usize,
    stack: usize,
    num_actions: usize,
    side: usize,
    /// `[episodes, steps]`.
    actions: Vec<usize>,
    frames: Frames,
}

impl Episodes {
    /// Episodes from their parts; an error says which part does not fit the others.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        episodes: usize,
        steps: usize,
        stack: usize,
        num_actions: usize,
        side: usize,
        actions: Vec<usize>,
        frames: Frames,
    ) -> Result<Self, String> {
        if episodes == 0 || steps == 0 || stack == 0 || side == 0 {
            return Err(format!("{episodes} episodes of {steps} steps, stack {stack}, side {side}: none may be 0"));
        }
        if actions.len() != episodes * steps {
            return Err(format!("{} actions for {episodes} episodes of {steps} steps", actions.len()));
        }
        if let Some((i, a)) = actions.iter().enumerate().find(|(_, &a)| a >= num_actions) {
            return Err(format!("action {a} (episode {}, step {}) is not below {num_actions}", i / steps, i % steps));
        }
        let frames_needed = episodes * (steps + stack);
        match &frames {
            Frames::Pixels(p) if p.len() != frames_needed * 3 * side * side => {
                return Err(format!(
                    "{} bytes of frames, expected {frames_needed} frames of 3 x {side} x {side}",
                    p.len()
                ))
            }
            Frames::Shapes(s) if s.len() != frames_needed || side != shapes::SIDE => {
                return Err(format!("{} shapes states of side {side}, expected {frames_needed}", s.len()))
            }
            _ => {}
        }
        Ok(Episodes { name, episodes, steps, stack, num_actions, side, actions, frames })
    }

    /// A short name of the data ("shapes-seed1", "pong", ..).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn num_episodes(&self) -> usize {
        self.episodes
    }

    /// Transitions per episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Frames per observation.
    pub fn stack(&self) -> usize {
        self.stack
    }

    pub fn num_actions(&self) -> usize {
        self.num_actions
    }

    /// Observation channels, `3 stack`.
    pub fn channels(&self) -> usize {
        3 * self.stack
    }

    /// Frame side in pixels.
    pub fn side(&self) -> usize {
        self.side
    }

    /// `[C, side, side]`.
    pub fn observation_shape(&self) -> [usize; 3] {
        [self.channels(), self.side, self.side]
    }

    /// Number of transitions, `episodes * steps`.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// All actions, `[episodes, steps]` row-major.
    pub fn actions(&self) -> &[usize] {
        &self.actions
    }

    pub fn frames(&self) -> &Frames {
        &self.frames
    }

    /// The action of transition `t` of episode `e`.
    pub fn action(&self, e: usize, t: usize) -> usize {
        assert!(e < self.episodes && t < self.steps, "{}: no transition {t} in episode {e}", self.name);
        self.actions[e * self.steps + t]
    }

    /// Write frame `f` of episode `e` into `out` (`3 side^2` values in `[0, 1]`).
    fn frame_into(&self, e: usize, f: usize, out: &mut [f32]) {
        let len = 3 * self.side * self.side;
        let k = e * (self.steps + self.stack) + f;
        match &self.frames {
            Frames::Pixels(p) => {
                for (o, &v) in out.iter_mut().zip(&p[k * len..(k + 1) * len]) {
                    *o = v as f32 / 255.0;
                }
            }
            Frames::Shapes(s) => {
                let mut bytes = [0u8; shapes::FRAME_LEN];
                s[k].render_into(&mut bytes);
                for (o, &v) in out.iter_mut().zip(bytes.iter()) {
                    *o = v as f32 / 255.0;
                }
            }
        }
    }

    /// Write observation `t` (`0..=steps`) of episode `e` into `out` (`C side^2` values).
    fn observation_into(&self, e: usize, t: usize, out: &mut [f32]) {
        let len = 3 * self.side * self.side;
        for (i, chunk) in out.chunks_mut(len).enumerate() {
            self.frame_into(e, t + self.stack - 1 - i, chunk);
        }
    }

    /// Observations `[B, C, side, side]` for `(episode, t)` pairs, `t` in `0..=steps`.
    pub fn observations(&self, at: &[(usize, usize)]) -> ArrayD<f32> {
        let [c, h, w] = self.observation_shape();
        for &(e, t) in at {
            assert!(e < self.episodes && t <= self.steps, "{}: no observation {t} in episode {e}", self.name);
        }
        let mut out = vec![0f32; at.len() * c * h * w];
        out.par_chunks_mut(c * h * w).zip(at.par_iter()).for_each(|(o, &(e, t))| self.observation_into(e, t, o));
        ArrayD::from_shape_vec(vec![at.len(), c, h, w], out).expect("observation batch shape")
    }

    /// The `(episode, step)` of transition `i` (episode-major).
    pub fn locate(&self, i: usize) -> (usize, usize) {
        assert!(i < self.len(), "{}: no transition {i} of {}", self.name, self.len());
        (i / self.steps, i % self.steps)
    }

    /// The transitions `indices` (see [`Episodes::locate`]) as a batch.
    pub fn batch(&self, indices: &[usize]) -> Batch {
        let at: Vec<_> = indices.iter().map(|&i| self.locate(i)).collect();
        let next: Vec<_> = at.iter().map(|&(e, t)| (e, t + 1)).collect();
        Batch {
            obs: self.observations(&at),
            actions: at.iter().map(|&(e, t)| self.action(e, t)).collect(),
            next_obs: self.observations(&next),
        }
    }
}

/// An Atari game of the C-SWM experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtariGame {
    Pong,
    SpaceInvaders,
}

impl AtariGame {
    /// The collector's name for it (`--game`, file names, the file's `game` metadata).
    pub fn id(self) -> &'static str {
        match self {
            AtariGame::Pong => "pong",
            AtariGame::SpaceInvaders => "spaceinvaders",
        }
    }

    /// The file the collector writes by default for a split ("train" or "eval"), relative to the repository.
    pub fn default_path(self, split: &str) -> PathBuf {
        PathBuf::from(format!("data/atari/{}-{split}.safetensors", self.id()))
    }

    /// The command that creates the game's files.
    pub fn command(self) -> String {
        format!("tools/atari/collect.sh {}", self.id())
    }
}

/// The collector's file format, stored in its `format` metadata.
pub const ATARI_FORMAT: &str = "cswm-atari-v1";

/// Why a data file could not be read. Every variant names the file.
#[derive(Debug)]
pub enum DataError {
    /// The file does not exist: `command` creates it.
    Missing { file: PathBuf, command: String },
    /// The file exists but could not be read.
    Io { file: PathBuf, source: std::io::Error },
    /// The file was read but is not what the collector writes.
    Malformed { file: PathBuf, problem: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Missing { file, command } => {
                write!(
                    f,
                    "data file {} does not exist; create it with `{command}` (from the repository root)",
                    file.display()
                )
            }
            DataError::Io { file, source } => write!(f, "cannot read data file {}: {source}", file.display()),
            DataError::Malformed { file, problem } => write!(f, "data file {} is malformed: {problem}", file.display()),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Read a file written by `tools/atari/collect.py` for `game` (see its documentation for the format):
/// `frames` uint8 `[E, steps + 2, 3, side, side]`, `actions` int64 `[E, steps]` in `0..num_actions`, and the
/// metadata `format`, `game`, `num_actions`, `stack` = 2.
pub fn load_atari(path: impl AsRef<Path>, game: AtariGame) -> Result<Episodes, DataError> {
    let file = path.as_ref();
    let bytes = std::fs::read(file).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing { file: file.to_path_buf(), command: game.command() },
        _ => DataError::Io { file: file.to_path_buf(), source },
    })?;
    parse_atari(&bytes, game).map_err(|problem| DataError::Malformed { file: file.to_path_buf(), problem })
}

fn parse_atari(bytes: &[u8], game: AtariGame) -> Result<Episodes, String> {
    let (n, header) = SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e:?})"))?;
    let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| meta.get(key).ok_or_else(|| format!("metadata field \"{key}\" is missing"));
    let format = field("format")?;
    if format != ATARI_FORMAT {
        return Err(format!("format \"{format}\", expected \"{ATARI_FORMAT}\""));
    }
    let found = field("game")?;
    if found != game.id() {
        return Err(format!("it holds game \"{found}\", expected \"{}\"", game.id()));
    }
    let number = |key: &str| -> Result<usize, String> {
        let v = field(key)?;
        v.parse().map_err(|_| format!("metadata field \"{key}\" = \"{v}\" is not a whole number"))
    };
    let num_actions = number("num_actions")?;
    let stack = number("stack")?;
    if stack != 2 || num_actions == 0 {
        return Err(format!("stack {stack} and num_actions {num_actions}: expected stack 2 and some actions"));
    }
    let tensors = header.tensors();
    let mut names: Vec<&String> = tensors.keys().filter(|k| *k != "frames" && *k != "actions").collect();
    if !names.is_empty() {
        names.sort();
        return Err(format!("unexpected tensor(s) {names:?}"));
    }
    let data = &bytes[8 + n..];
    let get = |name: &str, dtype: Dtype, rank: usize| {
        let info = tensors.get(name).ok_or_else(|| format!("tensor \"{name}\" is missing"))?;
        if info.dtype != dtype {
            return Err(format!("tensor \"{name}\" has dtype {:?}, expected {dtype:?}", info.dtype));
        }
        if info.shape.len() != rank {
            return Err(format!("tensor \"{name}\" has shape {:?}, expected {rank} axes", info.shape));
        }
        let (start, end) = info.data_offsets;
        Ok((info.shape.clone(), &data[start..end]))
    };
    let (fshape, frames) = get("frames", Dtype::U8, 5)?;
    let (ashape, raw_actions) = get("actions", Dtype::I64, 2)?;
    let [episodes, per_episode, channels, h, w] = fshape[..] else { unreachable!() };
    if channels != 3 || h != w || h == 0 {
        return Err(format!("tensor \"frames\" has shape {fshape:?}, expected [episodes, frames, 3, side, side]"));
    }
    if episodes == 0 || per_episode <= stack {
        return Err(format!("tensor \"frames\" has shape {fshape:?}: no transitions"));
    }
    let steps = per_episode - stack;
    if ashape != [episodes, steps] {
        return Err(format!(
            "tensor \"actions\" has shape {ashape:?}, expected [{episodes}, {steps}] for frames of shape {fshape:?}"
        ));
    }
    let mut actions = Vec::with_capacity(episodes * steps);
    for (i, b) in raw_actions.chunks_exact(8).enumerate() {
        let a = i64::from_le_bytes(b.try_into().expect("8 bytes"));
        if a < 0 || a as usize >= num_actions {
            return Err(format!("action {a} (episode {}, step {}) is not in 0..{num_actions}", i / steps, i % steps));
        }
        actions.push(a as usize);
    }
    Episodes::new(
        game.id().to_string(),
        episodes,
        steps,
        stack,
        num_actions,
        h,
        actions,
        Frames::Pixels(frames.to_vec()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny file in the collector's layout: frame `f` of episode `e` holds the byte `10 e + f` everywhere.
    pub(crate) fn tiny_atari(episodes: usize, steps: usize, side: usize) -> Episodes {
        let per = steps + 2;
        let mut frames = Vec::new();
        for e in 0..episodes {
            for f in 0..per {
                frames.extend(std::iter::repeat_n((10 * e + f) as u8, 3 * side * side));
            }
        }
        let actions = (0..episodes * steps).map(|i| i % 6).collect();
        Episodes::new("tiny".into(), episodes, steps, 2, 6, side, actions, Frames::Pixels(frames)).unwrap()
    }

    #[test]
    fn observations_stack_the_newest_frame_first() {
        let d = tiny_atari(2, 3, 4);
        assert_eq!((d.len(), d.channels(), d.observation_shape()), (6, 6, [6, 4, 4]));
        // Transition 4 = episode 1, step 1: obs [f2, f1], next [f3, f2].
        let b = d.batch(&[4]);
        assert_eq!(b.actions, vec![4]);
        let v = |x: &ArrayD<f32>, ch: usize| (x[[0, ch, 1, 2]] * 255.0).round() as u8;
        assert_eq!((v(&b.obs, 0), v(&b.obs, 3)), (12, 11));
        assert_eq!((v(&b.next_obs, 2), v(&b.next_obs, 5)), (13, 12));
        // The last observation of an episode is the last transition's next observation.
        let last = d.observations(&[(1, 3)]);
        assert_eq!(last, d.batch(&[5]).next_obs);
    }

    #[test]
    fn shapes_observations_are_one_rendered_frame() {
        let d = shapes::generate(2, 5, 3);
        assert_eq!((d.channels(), d.stack(), d.len(), d.num_actions()), (3, 1, 10, 20));
        let b = d.batch(&[0, 7]);
        assert_eq!(b.obs.shape(), &[2, 3, 50, 50]);
        let Frames::Shapes(s) = d.frames() else { panic!() };
        let expect: Vec<f32> = s[6 + 3].render().iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(b.next_obs.as_slice().unwrap()[3 * 2500..], expect[..]);
        assert!(b.obs.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn inconsistent_parts_are_rejected() {
        let f = || Frames::Pixels(vec![0; 4 * 3]);
        assert!(Episodes::new("x".into(), 1, 2, 2, 6, 1, vec![0, 1], f()).is_ok());
        assert!(Episodes::new("x".into(), 1, 2, 2, 6, 1, vec![0], f()).unwrap_err().contains("1 actions"));
        assert!(Episodes::new("x".into(), 1, 2, 2, 6, 1, vec![0, 6], f()).unwrap_err().contains("action 6"));
        assert!(Episodes::new("x".into(), 1, 3, 2, 6, 1, vec![0, 1, 2], f()).unwrap_err().contains("bytes"));
    }
}

#[cfg(test)]
mod loader_tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// Write a file in the collector's layout (`tools/atari/collect.py`'s `save`): frame `f` of episode `e`
    /// holds bytes `e`, `f`, `pixel % 256` in its three channels; action `t` of episode `e` is `(e + t) % 6`.
    fn write(path: &Path, episodes: usize, steps: usize, side: usize, edit: impl FnOnce(&mut Parts)) {
        let per = steps + 2;
        let mut frames = Vec::new();
        for e in 0..episodes {
            for f in 0..per {
                frames.extend(std::iter::repeat_n(e as u8, side * side));
                frames.extend(std::iter::repeat_n(f as u8, side * side));
                frames.extend((0..side * side).map(|p| (p % 256) as u8));
            }
        }
        let actions: Vec<i64> = (0..episodes).flat_map(|e| (0..steps).map(move |t| ((e + t) % 6) as i64)).collect();
        let meta: HashMap<String, String> = [
            ("format", ATARI_FORMAT),
            ("game", "pong"),
            ("num_actions", "6"),
            ("stack", "2"),
            ("env_id", "ALE/Pong-v5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut parts = Parts {
            frames_shape: vec![episodes, per, 3, side, side],
            frames,
            actions_dtype: Dtype::I64,
            actions_shape: vec![episodes, steps],
            actions: actions.iter().flat_map(|a| a.to_le_bytes()).collect(),
            meta,
        };
        edit(&mut parts);
        let f = TensorView::new(Dtype::U8, parts.frames_shape.clone(), &parts.frames).unwrap();
        let a = TensorView::new(parts.actions_dtype, parts.actions_shape.clone(), &parts.actions).unwrap();
        safetensors::serialize_to_file([("frames", f), ("actions", a)], &Some(parts.meta), path).unwrap();
    }

    struct Parts {
        frames_shape: Vec<usize>,
        frames: Vec<u8>,
        actions_dtype: Dtype,
        actions_shape: Vec<usize>,
        actions: Vec<u8>,
        meta: HashMap<String, String>,
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("srn-cswm-data-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn a_collector_file_reads_back() {
        let path = scratch("roundtrip.safetensors");
        write(&path, 3, 4, 5, |_| {});
        let d = load_atari(&path, AtariGame::Pong).unwrap();
        assert_eq!((d.num_episodes(), d.steps(), d.stack(), d.num_actions(), d.side()), (3, 4, 2, 6, 5));
        assert_eq!(d.observation_shape(), [6, 5, 5]);
        assert_eq!(d.action(2, 3), 5);
        // Transition 6 = episode 1, step 2: obs [f3, f2], next [f4, f3].
        let b = d.batch(&[6]);
        let byte = |x: &ArrayD<f32>, c: usize, y: usize, x_: usize| (x[[0, c, y, x_]] * 255.0).round() as u8;
        assert_eq!((byte(&b.obs, 0, 0, 0), byte(&b.obs, 1, 0, 0), byte(&b.obs, 4, 0, 0)), (1, 3, 2));
        assert_eq!((byte(&b.next_obs, 1, 4, 4), byte(&b.next_obs, 4, 4, 4)), (4, 3));
        assert_eq!(byte(&b.obs, 2, 1, 3), 8);
        assert_eq!(b.actions, vec![3]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_file_names_the_command_that_creates_it() {
        let path = scratch("absent.safetensors");
        let err = load_atari(&path, AtariGame::SpaceInvaders).unwrap_err().to_string();
        assert!(err.contains("absent.safetensors") && err.contains("tools/atari/collect.sh spaceinvaders"), "{err}");
    }

    #[test]
    fn malformed_files_are_rejected_naming_the_file_and_the_problem() {
        type Edit = Box<dyn FnOnce(&mut Parts)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("game", Box::new(|p: &mut Parts| drop(p.meta.insert("game".into(), "spaceinvaders".into()))), "game"),
            ("format", Box::new(|p: &mut Parts| drop(p.meta.remove("format"))), "\"format\" is missing"),
            ("stack", Box::new(|p: &mut Parts| drop(p.meta.insert("stack".into(), "two".into()))), "stack"),
            (
                "dtype",
                Box::new(|p: &mut Parts| {
                    p.actions_dtype = Dtype::I32;
                    p.actions.truncate(p.actions.len() / 2);
                }),
                "dtype",
            ),
            (
                "range",
                Box::new(|p: &mut Parts| p.actions[8..16].copy_from_slice(&7i64.to_le_bytes())),
                "action 7 (episode 0, step 1)",
            ),
            (
                "shape",
                Box::new(|p: &mut Parts| {
                    p.actions_shape = vec![2, 3];
                    p.actions.truncate(6 * 8);
                }),
                "\"actions\" has shape [2, 3]",
            ),
            (
                "channels",
                Box::new(|p: &mut Parts| p.frames_shape = vec![2, 6, 1, 5, 15]),
                "expected [episodes, frames, 3, side, side]",
            ),
        ];
        for (name, edit, expect) in cases {
            let path = scratch(&format!("bad-{name}.safetensors"));
            write(&path, 2, 4, 5, edit);
            let err = load_atari(&path, AtariGame::Pong).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DataError::Malformed { .. }), "{name}: {msg}");
            assert!(msg.contains(&format!("bad-{name}.safetensors")) && msg.contains(expect), "{name}: {msg}");
            std::fs::remove_file(&path).unwrap();
        }
        let path = scratch("garbage.safetensors");
        std::fs::write(&path, b"not a safetensors file at all").unwrap();
        let msg = load_atari(&path, AtariGame::Pong).unwrap_err().to_string();
        assert!(msg.contains("garbage.safetensors") && msg.contains("not a safetensors file"), "{msg}");
        std::fs::remove_file(&path).unwrap();
    }

    /// The real collector's output, if it has been collected (`tools/atari/collect.sh pong`).
    #[test]
    #[ignore = "needs data/atari/pong-eval.safetensors from tools/atari/collect.sh"]
    fn the_collected_pong_evaluation_file_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(AtariGame::Pong.default_path("eval"));
        let d = load_atari(&path, AtariGame::Pong).unwrap();
        assert_eq!((d.steps(), d.observation_shape(), d.num_actions()), (10, [6, 50, 50], 6));
        let b = d.batch(&[0, 1]);
        assert!(b.obs.iter().all(|&v| (0.0..=1.0).contains(&v)) && b.obs.iter().any(|&v| v > 0.0));
    }
}
