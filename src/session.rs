//! Turns a resolved chain into credentials: from the cache where possible,
//! else by calling STS layer by layer (session token, then each role), with
//! one one-time password at most.

use std::path::Path;
use std::time::Duration;

use crate::aws::{self, Service};
use crate::cache::{Cache, CacheKey, Turn};
use crate::chain::{Chain, RoleStep};
use crate::credentials::Credentials;
use crate::error::Error;
use crate::otp::{OtpSource, StepLedger};
use crate::sts::{self, MfaCode};

/// GetSessionToken's range for IAM user keys, in seconds.
pub const SESSION_TOKEN_SECONDS: std::ops::RangeInclusive<u64> = 900..=129_600;

/// AssumeRole's range, in seconds; the role's own maximum may be lower.
pub const ROLE_SECONDS: std::ops::RangeInclusive<u64> = 900..=43_200;

/// AWS's cap on a role assumed with temporary credentials (role chaining).
pub const CHAINED_ROLE_MAX_SECONDS: u64 = 3_600;

/// Margin for credentials that only sign the next call of the chain.
const SIGNING_MARGIN: Duration = Duration::from_secs(60);

/// The user's settings for a run, beyond the chain itself.
pub struct Options<'a> {
    pub duration: Duration,
    /// Whether `--duration` was given explicitly (it then wins over `duration_seconds`).
    pub duration_is_explicit: bool,
    pub grace: Duration,
    pub config_file: &'a Path,
    pub credentials_file: &'a Path,
}

/// One cacheable layer of a chain.
struct Layer<'a> {
    key: CacheKey,
    kind: &'static str,
    profile: &'a str,
    duration_seconds: u64,
    /// The duration requested before AWS's one-hour cap on chained roles applied.
    capped_from: Option<u64>,
    call: Call<'a>,
}

enum Call<'a> {
    SessionToken {
        serial: &'a str,
    },
    AssumeRole {
        role: &'a RoleStep,
        serial: Option<&'a str>,
    },
}

/// Builds and runs the layers of a chain.
pub struct Resolver<'a> {
    pub chain: &'a Chain,
    pub options: &'a Options<'a>,
    pub cache: &'a Cache,
    pub ledger: &'a StepLedger,
    pub otp: &'a mut dyn OtpSource,
    pub settings: aws::Settings,
    layers: Vec<Layer<'a>>,
    context: Option<aws::Context>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        chain: &'a Chain,
        options: &'a Options<'a>,
        cache: &'a Cache,
        ledger: &'a StepLedger,
        otp: &'a mut dyn OtpSource,
        settings: aws::Settings,
    ) -> Resolver<'a> {
        let layers = build_layers(chain, options, &settings);
        Resolver {
            chain,
            options,
            cache,
            ledger,
            otp,
            settings,
            layers,
            context: None,
        }
    }

    /// Checks the durations the chain will request, before any prompt or call.
    pub fn check_durations(&self) -> Result<(), Error> {
        for layer in &self.layers {
            let (range, credential_kind) = match layer.call {
                Call::SessionToken { .. } => (SESSION_TOKEN_SECONDS, "a session token"),
                Call::AssumeRole { .. } => (ROLE_SECONDS, "a role"),
            };
            if !range.contains(&layer.duration_seconds) {
                return Err(Error::InvalidDuration(format!(
                    "invalid duration {} for {credential_kind} of profile '{}': STS accepts {} to {}; \
                     change --duration / AWSU_DURATION or duration_seconds",
                    crate::duration::format(Duration::from_secs(layer.duration_seconds)),
                    layer.profile,
                    crate::duration::format(Duration::from_secs(*range.start())),
                    crate::duration::format(Duration::from_secs(*range.end())),
                )));
            }
        }
        Ok(())
    }

    /// Returns the chain's final credentials, from the cache or from STS.
    pub fn credentials(&mut self) -> Result<Credentials, Error> {
        if !self.chain.is_cacheable() {
            if self.chain.serial.is_some() {
                tracing::warn!(
                    "profile '{}' has temporary keys and no role, so its MFA serial is not used",
                    self.chain.base.profile
                );
            }
            tracing::info!(
                "using the keys of profile '{}' as they are (not cached)",
                self.chain.base.profile
            );
            return Ok(self.chain.base.credentials.clone());
        }

        // The layers are moved out while `obtain` borrows the resolver mutably.
        let layers = std::mem::take(&mut self.layers);
        let top = layers.len() - 1;
        let result = self.obtain(&layers, top, true);
        self.layers = layers;
        result
    }

    /// Returns the credentials of layer `index`, holding its lock while it is
    /// filled, so that concurrent awsu processes make one call between them.
    /// The requested (top) layer must outlive the grace period; the layers
    /// below it only sign the next call, so they need only a short margin.
    fn obtain(
        &mut self,
        layers: &[Layer<'_>],
        index: usize,
        is_top: bool,
    ) -> Result<Credentials, Error> {
        let grace = if is_top {
            self.options.grace
        } else {
            SIGNING_MARGIN
        };
        let layer = &layers[index];

        // Entries are replaced by an atomic rename, so a valid one can be read
        // without the lock. After a miss, either this process takes the lock
        // and fills the entry, or it waits for the awsu filling it. Either way
        // the entry is read again first, because that awsu may have just
        // filled it.
        if let Some(credentials) = self.cache.read(&layer.key, grace) {
            return Ok(credentials);
        }
        let task = format!("the {} of profile '{}'", layer.kind, layer.profile);
        let _lock = loop {
            let turn = self.cache.lock_to_fill(&layer.key, &task)?;
            if let Some(credentials) = self.cache.read_quietly(&layer.key, grace) {
                return Ok(credentials);
            }
            match turn {
                Turn::Fill(guard) => break guard,
                // The other awsu failed, or its entry does not last the grace
                // period requested here, so this process tries to fill it.
                Turn::Reread => {}
            }
        };

        let parent = if index == 0 {
            self.chain.base.credentials.clone()
        } else {
            self.obtain(layers, index - 1, false)?
        };
        let credentials = self.call(layer, &parent)?;

        if is_top && !credentials.valid_for(grace, std::time::SystemTime::now()) {
            tracing::warn!(
                "the {} of profile '{}' lasts {}, not longer than the grace period {}, so it will not be reused: \
                 set --grace (AWSU_GRACE) below {} to reuse it",
                layer.kind,
                layer.profile,
                crate::duration::format(Duration::from_secs(layer.duration_seconds)),
                crate::duration::format(self.options.grace),
                crate::duration::format(Duration::from_secs(layer.duration_seconds))
            );
        }
        self.cache
            .write(&layer.key, layer.profile, layer.kind, &credentials)?;
        Ok(credentials)
    }

    fn call(&mut self, layer: &Layer<'_>, parent: &Credentials) -> Result<Credentials, Error> {
        if self.context.is_none() {
            self.context = Some(aws::Context::new(self.settings.clone())?);
        }
        let context = self.context.as_ref().expect("context was just built");
        let duration = layer.duration_seconds as i32;
        if let Some(requested) = layer.capped_from {
            tracing::info!(
                "asking for the role of profile '{}' for 1h instead of {}: AWS allows no more for a role assumed with temporary credentials",
                layer.profile,
                crate::duration::format(Duration::from_secs(requested))
            );
        }
        let profile_of_keys = if parent.expiration.is_none() {
            self.chain.base.profile.as_str()
        } else {
            layer.profile
        };

        match layer.call {
            Call::SessionToken { serial } => self.ledger.with_code(serial, self.otp, |code| {
                sts::get_session_token(
                    context,
                    profile_of_keys,
                    parent,
                    MfaCode { serial, code },
                    duration,
                )
            }),
            Call::AssumeRole {
                role,
                serial: Some(serial),
            } => self.ledger.with_code(serial, self.otp, |code| {
                sts::assume_role(
                    context,
                    profile_of_keys,
                    parent,
                    role,
                    Some(MfaCode { serial, code }),
                    duration,
                )
            }),
            Call::AssumeRole { role, serial: None } => {
                sts::assume_role(context, profile_of_keys, parent, role, None, duration)
            }
        }
    }
}

/// Lists the cacheable layers of `chain`, innermost first, with their cache keys.
fn build_layers<'a>(
    chain: &'a Chain,
    options: &Options<'_>,
    settings: &aws::Settings,
) -> Vec<Layer<'a>> {
    let flag_seconds = options.duration.as_secs();
    let config_file = options.config_file.to_string_lossy();
    let credentials_file = options.credentials_file.to_string_lossy();
    let endpoint = settings.endpoint_or_default(Service::Sts);

    let mut layers = Vec::new();
    let mut parent_key = CacheKey::derive(&[
        ("config_file", &config_file),
        ("credentials_file", &credentials_file),
        ("sts_endpoint", &endpoint),
        ("base_profile", &chain.base.profile),
        ("access_key_id", &chain.base.credentials.access_key_id),
    ]);
    let mut temporary = chain.base.credentials.is_temporary();
    let mut pending_serial = chain.serial.as_ref().map(|serial| serial.arn.as_str());

    if chain.uses_session_token() {
        let serial = pending_serial
            .take()
            .expect("a session token needs a serial");
        let key = CacheKey::derive(&[
            ("parent", parent_key.as_str()),
            ("kind", "session-token"),
            ("mfa_serial", serial),
            ("duration_seconds", &flag_seconds.to_string()),
        ]);
        layers.push(Layer {
            key: key.clone(),
            kind: "session token",
            profile: &chain.base.profile,
            duration_seconds: flag_seconds,
            capped_from: None,
            call: Call::SessionToken { serial },
        });
        parent_key = key;
        temporary = true;
    }

    for role in &chain.roles {
        let serial = pending_serial.take();
        let requested = match role.duration_seconds {
            Some(seconds) if !options.duration_is_explicit => seconds,
            _ => flag_seconds,
        };
        let capped = temporary && requested > CHAINED_ROLE_MAX_SECONDS;
        let duration_seconds = if capped {
            CHAINED_ROLE_MAX_SECONDS
        } else {
            requested
        };

        let key = CacheKey::derive(&[
            ("parent", parent_key.as_str()),
            ("kind", "role"),
            ("profile", &role.profile),
            ("role_arn", &role.role_arn),
            ("external_id", role.external_id.as_deref().unwrap_or("")),
            ("role_session_name", &role.session_name),
            ("mfa_serial", serial.unwrap_or("")),
            ("duration_seconds", &duration_seconds.to_string()),
        ]);
        layers.push(Layer {
            key: key.clone(),
            kind: "role",
            profile: &role.profile,
            duration_seconds,
            capped_from: capped.then_some(requested),
            call: Call::AssumeRole { role, serial },
        });
        parent_key = key;
        temporary = true;
    }

    layers
}
