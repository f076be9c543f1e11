//! Shared harness for berth's integration tests: every test runs in a fresh network and
//! mount namespace with tmpfs over the state directories, so tests run in parallel, never
//! see each other and never touch the real host's links or firewall.

pub mod harness;
