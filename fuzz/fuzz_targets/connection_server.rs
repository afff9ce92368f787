//! A server connection fed arbitrary client bytes in arbitrary splits,
//! interleaved with sends, pings, closes and timeouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::Role;
use rfc6455_fuzz::{Conversation, run_conversation};

fuzz_target!(|conversation: Conversation| run_conversation(Role::Server, conversation));
