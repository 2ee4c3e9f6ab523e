#!/usr/bin/env python3
"""Collect the C-SWM Atari data sets (Pong, Space Invaders) with a random policy.

A data collector only: the engine never imports Python. It follows the public C-SWM reference's
`data_gen/env.py --atari` (Kipf et al., ICLR 2020), with these equivalences and choices:

- Environments: the reference's `PongDeterministic-v4` and `SpaceInvadersDeterministic-v4` are not registered
  in ale-py 0.12; `ALE/Pong-v5` with `frameskip=4` and `ALE/SpaceInvaders-v5` with `frameskip=3`, both with
  `repeat_action_probability=0.0` (no sticky actions) and the minimal action set (6 actions each), are their
  equivalents.
- Seeding: the first `reset` gets `--seed`, the action space is seeded with `--seed` (as the reference seeds
  `env` and `env.action_space`); later resets continue the environment's random stream.
- An episode: reset, `warmup` random actions (58 for Pong, 50 for Space Invaders), keep the last frame as
  `f0`, one NOOP step (action 0) giving `f1`, then `steps` random actions (default 10) giving `f2 .. f11`.
  Observation t is the stack `[f(t+1), f(t)]` (newest frame first, 6 channels), its action the t-th random
  action and its next observation `[f(t+2), f(t+1)]`, as in the reference.
- An episode that terminates or truncates before its last recorded step is discarded and collected again,
  so every episode has exactly `steps` transitions (the reference would keep a shorter one); the number
  discarded is stored in the metadata.
- Frames: rows 35:190 (Pong) or 30:200 (Space Invaders) of the 210 x 160 RGB screen, resized to 50 x 50 with
  PIL's Lanczos filter (the reference's `Image.ANTIALIAS`, an alias of LANCZOS) and stored as uint8; the
  reader divides by 255, as the reference does (`np.array(img) / 255`), so the values are the reference's.

Output, one safetensors file (written to a temporary file, then renamed into place):
- `frames`: uint8 `[episodes, steps + 2, 3, 50, 50]` (channels first),
- `actions`: int64 `[episodes, steps]`,
- metadata (strings): format = "cswm-atari-v1", game, env_id, frameskip, crop, warmup, steps, episodes,
  seed, num_actions, stack = "2", discarded, ale_py, gymnasium.
"""

import argparse
import os
import sys
import time

import numpy as np

GAMES = {
    # game: (environment id, frameskip, crop rows, warm-up steps)
    "pong": ("ALE/Pong-v5", 4, (35, 190), 58),
    "spaceinvaders": ("ALE/SpaceInvaders-v5", 3, (30, 200), 50),
}
SIDE = 50
FORMAT = "cswm-atari-v1"


def crop_resize(frame, crop):
    from PIL import Image

    img = Image.fromarray(frame[crop[0]:crop[1]]).resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.transpose(np.asarray(img, dtype=np.uint8), (2, 0, 1))


def collect(game, episodes, steps, seed, log_every=50):
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env_id, frameskip, crop, warmup = GAMES[game]
    env = gym.make(env_id, frameskip=frameskip, repeat_action_probability=0.0)
    env.action_space.seed(seed)
    num_actions = int(env.action_space.n)
    frames = np.zeros((episodes, steps + 2, 3, SIDE, SIDE), dtype=np.uint8)
    actions = np.zeros((episodes, steps), dtype=np.int64)
    discarded = 0
    first = True
    e = 0
    start = time.time()
    while e < episodes:
        ob, _ = env.reset(seed=seed) if first else env.reset()
        first = False
        ended = False
        for _ in range(warmup):
            ob, _, terminated, truncated, _ = env.step(env.action_space.sample())
            ended = ended or terminated or truncated
        if ended:
            discarded += 1
            continue
        frames[e, 0] = crop_resize(ob, crop)
        ob, _, terminated, truncated, _ = env.step(0)
        frames[e, 1] = crop_resize(ob, crop)
        ended = terminated or truncated
        for t in range(steps):
            if ended:
                break
            action = int(env.action_space.sample())
            ob, _, terminated, truncated, _ = env.step(action)
            # An episode that ends on its last recorded step still has all its frames.
            ended = (terminated or truncated) and t + 1 < steps
            frames[e, t + 2] = crop_resize(ob, crop)
            actions[e, t] = action
        if ended:
            discarded += 1
            continue
        e += 1
        if log_every and e % log_every == 0:
            print(f"{game}: {e}/{episodes} episodes, {time.time() - start:.1f} s", flush=True)
    env.close()
    meta = {
        "format": FORMAT,
        "game": game,
        "env_id": env_id,
        "frameskip": str(frameskip),
        "crop": f"{crop[0]}:{crop[1]}",
        "warmup": str(warmup),
        "steps": str(steps),
        "episodes": str(episodes),
        "seed": str(seed),
        "num_actions": str(num_actions),
        "stack": "2",
        "discarded": str(discarded),
        "ale_py": ale_py.__version__,
        "gymnasium": gym.__version__,
    }
    return frames, actions, meta


def save(path, frames, actions, meta):
    from safetensors.numpy import save_file

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        save_file({"frames": frames, "actions": actions}, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    p = argparse.ArgumentParser(description="Collect C-SWM Atari transitions with a random policy.")
    p.add_argument("--game", choices=sorted(GAMES), required=True)
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--steps", type=int, default=10, help="recorded transitions per episode (default 10)")
    p.add_argument("--out", required=True, help="the safetensors file to write")
    args = p.parse_args(argv)
    if args.episodes < 1 or args.steps < 1:
        p.error("--episodes and --steps must be at least 1")
    start = time.time()
    frames, actions, meta = collect(args.game, args.episodes, args.steps, args.seed)
    save(args.out, frames, actions, meta)
    size = os.path.getsize(args.out)
    print(
        f"wrote {args.out}: {args.episodes} episodes of {args.steps} transitions, "
        f"{meta['discarded']} discarded, {size / 1e6:.1f} MB, {time.time() - start:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
