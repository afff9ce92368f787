//! The wire format of a frame (RFC 6455 §5): header, opcodes and masking.
//!
//! This layer is stateless: it knows the bytes of one frame and nothing of
//! the connection around it. [`Connection`](crate::Connection) applies the
//! rules that need state (masking direction, fragmentation, limits).

// Numbers here come from the peer: arithmetic on them is checked.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod header;
mod mask;
mod opcode;

pub(crate) use header::{CommonFrame, put_short_header, short_header_len};
pub use header::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
pub use mask::{apply_mask, extend_masked};
pub use opcode::OpCode;
