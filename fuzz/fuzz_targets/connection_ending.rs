//! How a connection ends, in either role, driven as an adapter drives it
//! (timers fired after every step): a finished connection stays finished
//! with nothing to write, and none outlives `close_timeout` after its close
//! began, whatever the peer sends, reads or leaves unread.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::Role;
use rfc6455_fuzz::{Conversation, run_ending};

fuzz_target!(|input: (bool, Conversation)| {
    let (server, conversation) = input;
    let role = if server { Role::Server } else { Role::Client };
    run_ending(role, conversation);
});
