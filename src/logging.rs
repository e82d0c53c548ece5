//! Logs go to stderr through `tracing`; data goes to stdout. The filter comes from
//! `CUTOVER_LOG`, then `RUST_LOG`, then `-v`; `NO_COLOR` turns colour off and `CI`
//! switches to one compact line per event.

use tracing_subscriber::EnvFilter;

/// `verbosity`: 0 is the default (cutover's info), each `-v` one step up; below 0 the
/// action's `log-level` asks for less (-1 warn, -2 error).
pub fn init(verbosity: i8) {
    let default = default_filter(verbosity);
    let filter = std::env::var("CUTOVER_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(verbosity >= 2);
    let result = if std::env::var_os("CI").is_some() {
        builder.compact().without_time().try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests calling into the binary's code) keeps the first subscriber.
    drop(result);
}

/// The filter when neither `CUTOVER_LOG` nor `RUST_LOG` sets one.
fn default_filter(verbosity: i8) -> &'static str {
    // aws_config warns once per credential provider that has nothing (instance metadata
    // off EC2, a missing profile); the one error cutover prints says what to do instead.
    match verbosity {
        i8::MIN..=-2 => "error",
        -1 => "warn,aws_config=error",
        0 => "warn,cutover=info,aws_config=error",
        1 => "info,aws_config=error",
        2 => "info,cutover=debug",
        _ => "debug,cutover=trace",
    }
}

#[cfg(test)]
mod tests {
    use super::default_filter;

    /// The action's `log-level: error` or `warn` lowers what is logged below the default
    /// (it used to be ignored: every level below debug logged cutover's info lines).
    #[test]
    fn lower_levels_drop_cutovers_info_lines() {
        assert_eq!(default_filter(-2), "error");
        assert!(!default_filter(-1).contains("cutover=info"));
        assert!(default_filter(0).contains("cutover=info"));
        assert_eq!(default_filter(3), "debug,cutover=trace");
    }
}
