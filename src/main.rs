//! The `flux-status-exporter` binary: parse arguments, set up logging, run.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use flux_status_exporter::cli::{Cli, LogFormat, execute};
use flux_status_exporter::logging::{SafeStderr, sanitize_line};
use flux_status_exporter::redact::redact;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(&cli) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    // One thread is enough for a command that reads, decides and prints: decoding is the only
    // real work, and one allocator arena keeps a large read's peak memory down.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(&cli)) {
        Ok(output) => {
            print!("{}", redact(&output));
            ExitCode::SUCCESS
        }
        Err(err) => {
            if let Some(output) = err.output() {
                print!("{}", redact(output));
            }
            // Every error's message already names its input and cause.
            eprint!("{}", sanitize_line(&format!("error: {err}\n"), false));
            err.exit_code()
        }
    }
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let mut filter = EnvFilter::try_new(&cli.log_level)
        .map_err(|e| anyhow::anyhow!("--log-level `{}`: {e}", cli.log_level))?;
    // octocrab logs every error answer at ERROR with neither forge nor repository, retried ones
    // included; our own lines say the same with both. A filter naming octocrab still gets them.
    if !cli.log_level.contains("octocrab") {
        filter = filter.add_directive(
            "octocrab=off"
                .parse()
                .map_err(|e| anyhow::anyhow!("log filter: {e}"))?,
        );
    }
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SafeStderr { ansi })
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder
            .event_format(flux_status_exporter::logging::FluxJson)
            .init(),
    }
    Ok(())
}
