//! awsu: MFA-protected AWS credentials from YubiKeys, cached, exported or
//! passed to a program.

mod aws;
mod cache;
mod chain;
mod cli;
mod credentials;
mod duration;
mod error;
mod otp;
mod output;
mod session;
mod sts;
mod terminal;
mod yubikey;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache::Cache;
use crate::cli::{Cli, Command, Generator, GlobalArgs};
use crate::error::Error;
use crate::otp::{OtpSource, StepLedger};

fn main() {
    let cli = Cli::parse_env();
    init_logging(cli.global.verbose);

    let result = match &cli.command {
        None => run_default(&cli),
        Some(Command::Token) => run_token(&cli.global),
    };

    if let Err(error) = result {
        eprintln!("awsu: {error}");
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

/// The default command: resolve the profile, then export or exec.
fn run_default(cli: &Cli) -> Result<(), Error> {
    let global = &cli.global;
    check_global_durations(global)?;

    let (config_file, credentials_file) = config_paths(global)?;
    let profiles = load_profiles(&config_file, &credentials_file)?;
    let chain = chain::resolve(
        &profiles,
        &global.profile,
        global.mfa_serial.as_deref(),
        &default_session_name(),
    )?;
    tracing::info!(
        "profile chain: {} (keys {} from '{}')",
        chain.describe(),
        chain.base.credentials.access_key_id,
        chain.base.profile
    );

    let cache = if global.no_cache {
        Cache::disabled()
    } else {
        Cache::new(Cache::default_dir()?)
    };
    let ledger = StepLedger::new(Cache::default_dir()?);
    let options = session::Options {
        duration: global.duration,
        duration_is_explicit: cli.duration_is_explicit,
        grace: global.grace,
        config_file: &config_file,
        credentials_file: &credentials_file,
    };
    let settings = aws::Settings {
        profile_region: chain.region.clone(),
        profile_endpoint: profile_value(&profiles, &global.profile, "endpoint_url"),
        profile_ca_bundle: profile_value(&profiles, &global.profile, "ca_bundle"),
    };

    let mut otp = otp_source(global);
    let mut resolver =
        session::Resolver::new(&chain, &options, &cache, &ledger, otp.as_mut(), settings);
    resolver.check_durations()?;
    let credentials = resolver.credentials()?;

    let region = chain.region.as_deref();
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
    let serial = match &global.mfa_serial {
        Some(serial) => serial.clone(),
        None => {
            let (config_file, credentials_file) = config_paths(global)?;
            let profiles = load_profiles(&config_file, &credentials_file)?;
            let chain = chain::resolve(&profiles, &global.profile, None, &default_session_name())?;
            chain
                .serial
                .map(|serial| serial.arn)
                .ok_or_else(|| Error::NoSerial {
                    profile: global.profile.clone(),
                })?
        }
    };

    // A code that was shown may be typed somewhere, so its step counts as used.
    let step = otp::time_step(SystemTime::now());
    let code = otp_source(global).code(&serial, step)?;
    StepLedger::new(Cache::default_dir()?).record(&serial, step);
    println!("{code}");
    Ok(())
}

fn otp_source(global: &GlobalArgs) -> Box<dyn OtpSource> {
    match global.generator {
        Generator::Manual => Box::new(otp::Manual),
        Generator::Yubikey => Box::new(yubikey::YubiKey::new(global.reader.clone())),
    }
}

/// Checks the flags' durations before anything else happens.
fn check_global_durations(global: &GlobalArgs) -> Result<(), Error> {
    let range = session::SESSION_TOKEN_SECONDS;
    let seconds = global.duration.as_secs();
    if !range.contains(&seconds) {
        return Err(Error::InvalidDuration(format!(
            "invalid duration {}: STS accepts {} to {}",
            duration::format(global.duration),
            duration::format(Duration::from_secs(*range.start())),
            duration::format(Duration::from_secs(*range.end()))
        )));
    }
    if global.grace >= global.duration {
        return Err(Error::InvalidDuration(format!(
            "invalid grace {}: it must be shorter than the duration {}, or cached credentials would never be used",
            duration::format(global.grace),
            duration::format(global.duration)
        )));
    }
    Ok(())
}

fn config_paths(global: &GlobalArgs) -> Result<(PathBuf, PathBuf), Error> {
    let home = || -> Result<PathBuf, Error> {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::Other(
                    "HOME is not set: set it, or pass --config-file and --shared-credentials-file"
                        .into(),
                )
            })
    };
    let config = match &global.config_file {
        Some(path) => path.clone(),
        None => home()?.join(".aws").join("config"),
    };
    let credentials = match &global.shared_credentials_file {
        Some(path) => path.clone(),
        None => home()?.join(".aws").join("credentials"),
    };
    Ok((config, credentials))
}

fn load_profiles(config: &Path, credentials: &Path) -> Result<awsu_profile::ProfileSet, Error> {
    let profiles = awsu_profile::load(config, credentials)?;
    for warning in profiles.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(profiles)
}

fn profile_value(profiles: &awsu_profile::ProfileSet, name: &str, key: &str) -> Option<String> {
    profiles
        .profile(name)
        .and_then(|profile| profile.get(key))
        .map(str::to_owned)
}

fn default_session_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    chain::session_name_for_user(user.as_deref())
}
