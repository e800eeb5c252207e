//! awsu: MFA-protected AWS credentials from YubiKeys, cached, exported or
//! passed to a program.

mod aws;
mod aws_error;
mod cache;
mod chain;
mod cli;
mod commands;
mod credentials;
mod duration;
mod error;
mod iam;
mod otp;
mod output;
mod profile;
mod qr;
mod session;
mod sts;
mod terminal;
mod yubikey;

use std::io::IsTerminal;
use std::time::SystemTime;

use crate::cache::Cache;
use crate::cli::{Cli, Command, Generator, GlobalArgs};
use crate::error::Error;
use crate::otp::StepLedger;
use crate::profile::Profile;

fn main() {
    let cli = Cli::parse_env();
    if let Some(kind) = cli.generate {
        use clap::CommandFactory;

        let mut stdout = std::io::stdout().lock();
        match kind.write(Cli::command(), &mut stdout) {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("awsu: could not write the generated output: {error}");
                std::process::exit(1);
            }
            _ => {}
        }
        return;
    }
    init_logging(cli.global.verbose);

    let result = match &cli.command {
        None => run_default(&cli),
        Some(Command::Token) => run_token(&cli.global),
        Some(Command::Register(args)) => commands::register::run(&cli, args),
        Some(Command::Unregister(args)) => commands::unregister::run(&cli, args),
        Some(Command::Console(args)) => commands::console::run(&cli, args),
    };

    if let Err(error) = result {
        eprintln!("awsu: {error}");
        let card_failed = matches!(error, Error::YubiKey(_));
        if card_failed && cli.global.generator == Generator::Yubikey && cli.command.is_none() {
            eprintln!("hint: to type the one-time password instead, add -g manual");
        }
        std::process::exit(error.exit_code());
    }
}

/// Sends awsu's own log lines to stderr: warnings always, each step with `-v`.
/// The SDK's internals stay at warnings, because they are noise to a user.
fn init_logging(verbose: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;

    let own_level = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("awsu", own_level)
        .with_target("awsu_profile", own_level)
        .with_target("ykoath", own_level);
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time();

    tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .init();
}

/// Runs the default command: resolves the profile, then exports or execs.
fn run_default(cli: &Cli) -> Result<(), Error> {
    let global = &cli.global;
    let profile = Profile::load(cli, global.mfa_serial.as_deref())?;
    let credentials = profile.credentials(cli)?;

    let region = profile.chain.profile_region.as_deref();
    if cli.program.is_empty() {
        print!(
            "{}",
            output::export_lines(&credentials, &global.profile, region)
        );
        Ok(())
    } else {
        Err(output::exec(
            &cli.program,
            &credentials,
            &global.profile,
            region,
        ))
    }
}

/// `awsu token`: print the current code for the profile's serial or `--mfa`.
fn run_token(global: &GlobalArgs) -> Result<(), Error> {
    if global.generator == Generator::Manual {
        return Err(Error::Other(
            "awsu token reads one-time passwords from a YubiKey: drop -g manual / AWSU_GENERATOR=manual"
                .into(),
        ));
    }

    // Only the serial matters here, so the profile needs no keys.
    let serial = match &global.mfa_serial {
        Some(serial) => serial.clone(),
        None => {
            let (config_file, credentials_file) = profile::config_paths(global)?;
            let profiles = profile::load_profiles(&config_file, &credentials_file)?;
            chain::find_serial(&profiles, &global.profile)?.ok_or_else(|| Error::NoSerial {
                profile: global.profile.clone(),
            })?
        }
    };

    // A code that was shown may be typed somewhere, so its step counts as used.
    let step = otp::time_step(SystemTime::now());
    let code = profile::otp_source(global).code(&serial, step)?;
    StepLedger::new(Cache::default_dir()?)?.record(&serial, step);
    println!("{code}");
    Ok(())
}
