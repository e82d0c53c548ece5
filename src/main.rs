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
        // `cutover status --json | head`: the reader left; that is not an error.
        Err(err) if is_broken_pipe(&err) => cutover::exit::ExitCode::Ok,
        Err(err) => {
            // The error already names the file, field or AWS call and what to do; print it
            // plainly so multi-line hints stay readable.
            eprintln!("error: {}", cutover::commands::error_text(&err));
            cutover::commands::exit_code(&err)
        }
    };
    ExitCode::from(code.code())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
