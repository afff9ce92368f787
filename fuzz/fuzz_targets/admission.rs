//! The admission limits as a state machine: accepts before the head,
//! proxied connections resolved to their clients, admits, drops and time,
//! checked against a model of the permits held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455_fuzz::admission::{Run, run_admission};

fuzz_target!(|run: Run| run_admission(run));
