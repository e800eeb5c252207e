//! The profile given on the command line: its files, its resolved chain, and
//! the credentials the default command and the subcommands obtain for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::aws;
use crate::cache::Cache;
use crate::chain::{self, Chain};
use crate::cli::{Cli, Generator, GlobalArgs};
use crate::credentials::Credentials;
use crate::duration;
use crate::error::Error;
use crate::otp::{self, OtpSource, StepLedger};
use crate::session;
use crate::yubikey;

/// The profile of the command line, resolved into a chain, with what is
/// needed to turn it into credentials as the default command does.
pub struct Profile {
    pub chain: Chain,
    pub settings: aws::Settings,
    config_file: PathBuf,
    credentials_file: PathBuf,
}

impl Profile {
    /// Loads the config files and resolves `--profile`. `serial_override` is
    /// the caller's MFA serial from `--mfa`, if it applies to the command.
    pub fn load(cli: &Cli, serial_override: Option<&str>) -> Result<Profile, Error> {
        let global = &cli.global;
        check_global_durations(global)?;

        let (config_file, credentials_file) = config_paths(global)?;
        let profiles = load_profiles(&config_file, &credentials_file)?;
        let chain = chain::resolve(
            &profiles,
            &global.profile,
            serial_override,
            &default_session_name(),
        )?;
        tracing::info!(
            "profile chain: {} (keys {} from '{}')",
            chain.describe(),
            chain.base.credentials.access_key_id,
            chain.base.profile
        );

        let settings = aws::Settings {
            profile_region: chain.region.clone(),
            profile_endpoint: profile_value(&profiles, &global.profile, "endpoint_url"),
            profile_services_section: profile_value(&profiles, &global.profile, "services"),
            profile_service_endpoints: service_endpoints(&profiles, &global.profile),
            profile_ignore_endpoints: profile_value(
                &profiles,
                &global.profile,
                "ignore_configured_endpoint_urls",
            ),
            profile_ca_bundle: profile_value(&profiles, &global.profile, "ca_bundle"),
        };
        Ok(Profile {
            chain,
            settings,
            config_file,
            credentials_file,
        })
    }

    /// Returns the profile's credentials as the default command obtains them:
    /// from the cache, or from STS with a one-time password where the chain needs one.
    pub fn credentials(&self, cli: &Cli) -> Result<Credentials, Error> {
        let global = &cli.global;
        let cache = if global.no_cache {
            Cache::disabled()
        } else {
            Cache::new(Cache::default_dir()?)?
        };
        let ledger = StepLedger::new(Cache::default_dir()?)?;
        let options = session::Options {
            duration: global.duration,
            duration_is_explicit: cli.duration_is_explicit,
            grace: global.grace,
            config_file: &self.config_file,
            credentials_file: &self.credentials_file,
        };

        let mut otp = otp_source(global);
        let mut resolver = session::Resolver::new(
            &self.chain,
            &options,
            &cache,
            &ledger,
            otp.as_mut(),
            self.settings.clone(),
        );
        resolver.check_durations()?;
        resolver.credentials()
    }
}

/// Returns the one-time password source that `--generator` selects.
pub fn otp_source(global: &GlobalArgs) -> Box<dyn OtpSource> {
    match global.generator {
        Generator::Manual => Box::new(otp::Manual),
        Generator::Yubikey => Box::new(yubikey::YubiKey::new(global.reader.clone())),
    }
}

/// Checks the flags' durations before anything else happens.
pub fn check_global_durations(global: &GlobalArgs) -> Result<(), Error> {
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
            "invalid grace {}: it must be shorter than the duration {}, or cached credentials would never be used. \
             Set a shorter --grace (AWSU_GRACE) or a longer --duration (AWSU_DURATION)",
            duration::format(global.grace),
            duration::format(global.duration)
        )));
    }
    Ok(())
}

/// Returns the config and credentials file paths from the flags, or their defaults under HOME.
pub fn config_paths(global: &GlobalArgs) -> Result<(PathBuf, PathBuf), Error> {
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

    // A missing file counts as empty, as for the AWS CLI, but one named
    // explicitly is most likely a typo worth pointing out.
    let named = [
        (
            global.config_file.is_some(),
            &config,
            "--config-file / AWS_CONFIG_FILE",
        ),
        (
            global.shared_credentials_file.is_some(),
            &credentials,
            "--shared-credentials-file / AWS_SHARED_CREDENTIALS_FILE",
        ),
    ];
    for (explicit, path, source) in named {
        if explicit && !path.exists() {
            tracing::warn!(
                "{} (from {source}) does not exist, so it is read as empty",
                path.display()
            );
        }
    }
    Ok((config, credentials))
}

/// Loads both files and logs the parser's warnings.
pub fn load_profiles(config: &Path, credentials: &Path) -> Result<awsu_profile::ProfileSet, Error> {
    let profiles = awsu_profile::load(config, credentials)?;
    for warning in profiles.warnings() {
        tracing::warn!("{warning}");
    }
    Ok(profiles)
}

/// Returns a key of the named profile, if both exist.
pub fn profile_value(profiles: &awsu_profile::ProfileSet, name: &str, key: &str) -> Option<String> {
    profiles
        .profile(name)
        .and_then(|profile| profile.get(key))
        .map(str::to_owned)
}

/// Returns the `endpoint_url` of each service awsu calls, from the
/// `[services NAME]` section that the profile's `services` names.
fn service_endpoints(
    profiles: &awsu_profile::ProfileSet,
    name: &str,
) -> Vec<(aws::Service, String)> {
    let Some(section_name) = profile_value(profiles, name, "services") else {
        return Vec::new();
    };
    let Some(section) = profiles.services(&section_name) else {
        tracing::warn!(
            "profile '{name}' names the services section '{section_name}', which is not in the config file"
        );
        return Vec::new();
    };

    [aws::Service::Sts, aws::Service::Iam]
        .into_iter()
        .filter_map(|service| {
            let endpoint = section
                .sub_properties(service.config_key())?
                .get("endpoint_url")?
                .to_string();
            Some((service, endpoint))
        })
        .collect()
}

/// Returns the role session name for roles without `role_session_name`.
pub fn default_session_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    chain::session_name_for_user(user.as_deref())
}
