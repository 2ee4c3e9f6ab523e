//! Layers, optimisers and checkpoints on the autograd tape.
//!
//! - [`Param`]: a parameter living outside any tape, a cheap shared handle; [`Buffer`] for non-trained state.
//! - [`Scope`]: one step's tape plus the leaf each parameter became on it; [`Scope::grads`] gives [`Grads`].
//! - [`Module`]: named parameters and buffers with dotted, `state_dict`-style names.
//! - [`init`]: PyTorch's default initialisations from a seeded RNG.
//! - [`Linear`], [`Mlp`]: the dense layers; [`Conv2d`], [`ConvTranspose2d`]; [`BatchNorm`], [`LayerNorm`];
//!   [`Lstm`], [`Embedding`]; [`FSPool`] and the set encoder [`FSEncoder`]; the set decoder [`SetDecoder`].
//! - [`Srn`] (Algorithm 1's refinement, [`SetPipeline`] for a whole model) and [`evaluate`], the evaluation mode;
//!   [`Grn`], the graph version (nodes and edge weights refined through a [`GraphEncoder`] such as
//!   [`MessagePassing`]).
//! - [`Sgd`], [`Adam`], [`clip_grad_norm`]: PyTorch's update rules, with savable state.
//! - [`Checkpoint`]: safetensors files, saved atomically, loaded strictly ([`CheckpointError`]).

pub mod checkpoint;
pub mod conv;
pub mod fspool;
pub mod grn;
pub mod init;
pub mod linear;
pub mod lstm;
pub mod module;
pub mod norm;
pub mod optim;
pub mod param;
pub mod relation;
pub mod scope;
pub mod set_decoder;
pub mod srn;

pub use checkpoint::{load_module, save_module, Checkpoint, CheckpointError};
pub use conv::{Conv2d, ConvTranspose2d};
pub use fspool::{FSEncoder, FSPool};
pub use grn::{complete_graph, node_mask, GraphEncoder, GraphRefinement, Grn, MessagePassing};
pub use linear::{Activation, Linear, Mlp};
pub use lstm::{Embedding, Lstm, LstmDirection};
pub use module::{join, prefixed, unique, Module};
pub use norm::{BatchNorm, LayerNorm};
pub use optim::{clip_grad_norm, Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
pub use param::{Buffer, Param, ParamId};
pub use relation::PairRelation;
pub use scope::{evaluate, Grads, Scope};
pub use set_decoder::{Decoded, SetDecoder};
pub use srn::{InnerGradient, Refinement, SetEncoder, SetOutput, SetPipeline, Srn, SrnConfig};
