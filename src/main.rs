//! The `cutover` binary: parse arguments, start logging, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cutover::cli::Cli::parse();
    cutover::logging::init(cli.verbosity());
    // Not locked for the whole run: reporters on other threads (the action's workflow
    // commands) write to stdout too.
    let mut stdout = std::io::stdout();
    let code = match cli
        .into_request()
        .and_then(|req| cutover::commands::run(req, &mut stdout))
    {
        Ok(code) => code,
        Err(err) => {
            // The error already names the file, field or AWS call and what to do; print it
            // plainly so multi-line hints stay readable.
            eprintln!("error: {err:#}");
            cutover::exit::code_for(&err)
        }
    };
    ExitCode::from(code.code())
}
