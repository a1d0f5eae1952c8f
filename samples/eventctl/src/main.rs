//! The `eventctl` binary: parses the command line and hands it to [`eventctl::cli::execute`] with
//! the real device backends.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use eventctl::cli::{Cli, Context, MAX_WIDTH, execute};
use eventctl::devices::backend_with_image;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Usage errors exit 2, --help and --version 0.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let exit = execute(
        &cli.command,
        &mut Context {
            backends: &backend_with_image,
            out: &mut stdout.lock(),
            err: &mut stderr.lock(),
            width: terminal_width(),
        },
    );
    ExitCode::from(exit.code())
}

/// `$COLUMNS` if set and sensible, else [`MAX_WIDTH`].
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c >= 40)
        .map_or(MAX_WIDTH, |c| c.min(MAX_WIDTH))
}
