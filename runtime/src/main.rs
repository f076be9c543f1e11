//! The `berth` CLI: parse, dispatch, map errors to Docker's exit codes.

use clap::Parser;

fn main() {
    // A detached container's waiter: before anything else, so it stays small.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == berth::process::waiter::WAIT) {
        berth::process::waiter::wait_main(&args[1..]);
    }
    netd::logging::init();
    let cli = match berth::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if !matches!(cli.command, berth::cli::Command::Monitor { .. } | berth::cli::Command::Reap { .. }) {
        // Like other CLI tools, end quietly when the reader of our output goes away
        // (`berth inspect x | head`). The monitor keeps ignoring SIGPIPE: it must survive.
        // SAFETY: setting a signal disposition before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match berth::cli::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
