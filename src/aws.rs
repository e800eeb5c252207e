//! Shared set-up for AWS SDK clients: one HTTPS client with bounded timeouts,
//! proxy support from the environment, an optional custom CA bundle, and
//! endpoint overrides.
//!
//! Clients are always given explicit credentials and region, so the SDK's
//! default credential chain (and with it the instance metadata service) is
//! never consulted. The context is built only when a call is needed, because
//! building the HTTPS client loads the system's root certificates.

use std::time::Duration;

use aws_sdk_sts::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::credentials::Credentials;
use crate::error::Error;

/// Time to establish a TCP (and TLS) connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Time to wait for the first byte of a response.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound for a whole operation, retries included, so that an
/// unreachable endpoint fails within 10 seconds.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts per operation: throttling and 5xx responses are retried with back-off.
const MAX_ATTEMPTS: u32 = 3;

/// Region used when neither the environment nor the profile sets one.
const FALLBACK_REGION: &str = "us-east-1";

/// An AWS service that awsu calls, with what is needed to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Sts,
    Iam,
}

impl Service {
    /// Returns the name used in `AWS_ENDPOINT_URL_<NAME>` and in messages.
    pub fn env_name(self) -> &'static str {
        match self {
            Service::Sts => "STS",
            Service::Iam => "IAM",
        }
    }

    /// Returns the service's key in a `[services NAME]` section of the config file.
    pub fn config_key(self) -> &'static str {
        match self {
            Service::Sts => "sts",
            Service::Iam => "iam",
        }
    }

    fn default_host(self, region: &str) -> String {
        match self {
            Service::Sts => format!("https://sts.{region}.amazonaws.com"),
            Service::Iam => "https://iam.amazonaws.com".to_owned(),
        }
    }
}

/// Settings that decide where and how AWS is called, read from the
/// environment and the profile.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `region` of the profile chain, if any.
    pub profile_region: Option<String>,
    /// `endpoint_url` of the profile, if any.
    pub profile_endpoint: Option<String>,
    /// Name of the `[services NAME]` section that the profile's `services` names.
    pub profile_services_section: Option<String>,
    /// `endpoint_url` per service from that section.
    pub profile_service_endpoints: Vec<(Service, String)>,
    /// `ignore_configured_endpoint_urls` of the profile, if any.
    pub profile_ignore_endpoints: Option<String>,
    /// `ca_bundle` of the profile, if any.
    pub profile_ca_bundle: Option<String>,
}

impl Settings {
    /// Returns the region for calls: AWS_REGION, then AWS_DEFAULT_REGION, then
    /// the profile's, then us-east-1.
    pub fn region(&self) -> String {
        env_non_empty("AWS_REGION")
            .or_else(|| env_non_empty("AWS_DEFAULT_REGION"))
            .or_else(|| self.profile_region.clone())
            .unwrap_or_else(|| FALLBACK_REGION.to_owned())
    }

    /// Returns the endpoint override for a service, in the SDKs' order:
    /// `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the service's
    /// `endpoint_url` in the profile's `services` section, the profile's
    /// `endpoint_url`. It returns `None` when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
    /// (or else the profile's `ignore_configured_endpoint_urls`) is `true`.
    pub fn endpoint(&self, service: Service) -> Option<String> {
        self.endpoint_with(service, env_non_empty)
            .map(|(endpoint, _)| endpoint)
    }

    /// Returns what a message should point at for the endpoint of `service`:
    /// the setting that chose it, or the variable that would override it.
    pub fn endpoint_hint(&self, service: Service) -> String {
        match self.endpoint_with(service, env_non_empty) {
            Some((_, origin)) => format!("{origin}, which sets this endpoint"),
            None => format!(
                "AWS_ENDPOINT_URL_{} if {} must be reached elsewhere",
                service.env_name(),
                service.env_name()
            ),
        }
    }

    /// Returns the endpoint override for `service` and the setting it came
    /// from, with the environment read through `env`.
    fn endpoint_with(
        &self,
        service: Service,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<(String, String)> {
        let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .or_else(|| self.profile_ignore_endpoints.clone())
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if ignore {
            return None;
        }

        let service_variable = format!("AWS_ENDPOINT_URL_{}", service.env_name());
        if let Some(endpoint) = env(&service_variable) {
            return Some((endpoint, service_variable));
        }
        if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
            return Some((endpoint, "AWS_ENDPOINT_URL".to_owned()));
        }
        let from_services = self
            .profile_service_endpoints
            .iter()
            .find(|(configured, _)| *configured == service);
        if let Some((_, endpoint)) = from_services {
            let origin = format!(
                "the {} endpoint_url in [services {}] of the config file",
                service.config_key(),
                self.profile_services_section.as_deref().unwrap_or_default()
            );
            return Some((endpoint.clone(), origin));
        }
        self.profile_endpoint
            .clone()
            .map(|endpoint| (endpoint, "the profile's endpoint_url".to_owned()))
    }

    /// Returns the endpoint a service is reached at, for messages and cache keys.
    pub fn endpoint_or_default(&self, service: Service) -> String {
        self.endpoint(service)
            .unwrap_or_else(|| service.default_host(&self.region()))
    }
}

fn env_non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The parts SDK clients share: the runtime, the HTTPS client and the settings.
pub struct Context {
    pub settings: Settings,
    runtime: tokio::runtime::Runtime,
    http_client: SharedHttpClient,
}

impl Context {
    /// Builds the runtime and HTTPS client. Proxies come from HTTPS_PROXY,
    /// HTTP_PROXY, ALL_PROXY and NO_PROXY; AWS_CA_BUNDLE (or the profile's
    /// `ca_bundle`) replaces the system's root certificates.
    pub fn new(settings: Settings) -> Result<Context, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| Error::Other(format!("could not start the async runtime: {error}")))?;

        let ca_bundle =
            env_non_empty("AWS_CA_BUNDLE").or_else(|| settings.profile_ca_bundle.clone());
        let trust_store = match ca_bundle {
            None => TrustStore::default(),
            Some(path) => {
                let pem = std::fs::read(&path).map_err(|source| Error::CaBundle {
                    path: path.clone().into(),
                    source,
                })?;
                tracing::debug!("trusting only the certificates in {path}");
                TrustStore::empty().with_pem_certificate(pem)
            }
        };
        let tls_context = TlsContext::builder()
            .with_trust_store(trust_store)
            .build()
            .map_err(|error| Error::Other(format!("invalid TLS settings: {error}")))?;

        let http_client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = aws_smithy_http_client::Connector::builder()
                    .proxy_config(ProxyConfig::from_env());
                builder.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .tls_context(tls_context.clone())
                    .build()
            },
        );

        Ok(Context {
            settings,
            runtime,
            http_client,
        })
    }

    /// Runs a future to completion on the context's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Returns the endpoint override for `service`, logging where it came from.
    fn endpoint_override(&self, service: Service) -> Option<String> {
        let (endpoint, origin) = self.settings.endpoint_with(service, env_non_empty)?;
        tracing::debug!(
            "reaching {} at {endpoint}, set by {origin}",
            service.env_name()
        );
        Some(endpoint)
    }

    /// Returns an STS client that signs with `credentials`.
    pub fn sts(&self, credentials: &Credentials) -> aws_sdk_sts::Client {
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.settings.region()))
            .credentials_provider(sdk_credentials(credentials))
            .http_client(self.http_client.clone())
            .timeout_config(timeout_config())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(endpoint) = self.endpoint_override(Service::Sts) {
            config = config.endpoint_url(endpoint);
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }

    /// Returns an IAM client that signs with `credentials`.
    pub fn iam(&self, credentials: &Credentials) -> aws_sdk_iam::Client {
        let mut config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new(self.settings.region()))
            .credentials_provider(sdk_credentials(credentials))
            .http_client(self.http_client.clone())
            .timeout_config(timeout_config())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        if let Some(endpoint) = self.endpoint_override(Service::Iam) {
            config = config.endpoint_url(endpoint);
        }
        aws_sdk_iam::Client::from_conf(config.build())
    }
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Converts awsu's credentials into the SDK's, for signing.
pub fn sdk_credentials(credentials: &Credentials) -> aws_sdk_sts::config::Credentials {
    aws_sdk_sts::config::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_owned(),
        credentials
            .session_token
            .as_ref()
            .map(|token| token.expose().to_owned()),
        None,
        "awsu",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const ENV_GLOBAL: (&str, &str) = ("AWS_ENDPOINT_URL", "https://global-from-env.example");
    const ENV_STS: (&str, &str) = ("AWS_ENDPOINT_URL_STS", "https://sts-from-env.example");
    const ENV_IGNORE: (&str, &str) = ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true");
    const ENV_DO_NOT_IGNORE: (&str, &str) = ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false");
    const PROFILE_GLOBAL: &str = "https://global-from-config.example";
    const PROFILE_STS: &str = "https://sts-from-config.example";

    fn settings(global: bool, sts: bool, ignore: bool) -> Settings {
        Settings {
            profile_endpoint: global.then(|| PROFILE_GLOBAL.to_owned()),
            profile_services_section: sts.then(|| "local".to_owned()),
            profile_service_endpoints: if sts {
                vec![(Service::Sts, PROFILE_STS.to_owned())]
            } else {
                Vec::new()
            },
            profile_ignore_endpoints: ignore.then(|| "true".to_owned()),
            ..Settings::default()
        }
    }

    /// Environment variables of a test case, as name and value.
    type Env<'a> = &'a [(&'a str, &'a str)];

    fn endpoint(settings: &Settings, service: Service, env: Env) -> Option<String> {
        endpoint_and_origin(settings, service, env).map(|(endpoint, _)| endpoint)
    }

    fn endpoint_and_origin(
        settings: &Settings,
        service: Service,
        env: Env,
    ) -> Option<(String, String)> {
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        settings.endpoint_with(service, |name| env.get(name).map(|value| value.to_string()))
    }

    /// The order that the AWS CLI's test vectors pin (aws-cli, file
    /// tests/functional/configured_endpoint_urls/profile-tests.json), with STS
    /// in place of S3.
    #[test]
    fn endpoint_precedence() {
        let cases: &[(Settings, Env, Option<&str>)] = &[
            (settings(false, false, false), &[], None),
            (settings(true, false, false), &[], Some(PROFILE_GLOBAL)),
            (settings(false, true, false), &[], Some(PROFILE_STS)),
            (settings(true, true, false), &[], Some(PROFILE_STS)),
            (
                settings(true, true, false),
                &[ENV_GLOBAL],
                Some(ENV_GLOBAL.1),
            ),
            (settings(true, true, false), &[ENV_STS], Some(ENV_STS.1)),
            (
                settings(true, true, false),
                &[ENV_GLOBAL, ENV_STS],
                Some(ENV_STS.1),
            ),
            (
                settings(true, true, false),
                &[ENV_GLOBAL, ENV_STS, ENV_IGNORE],
                None,
            ),
            (settings(true, true, true), &[ENV_GLOBAL, ENV_STS], None),
            (
                settings(true, true, true),
                &[ENV_STS, ENV_DO_NOT_IGNORE],
                Some(ENV_STS.1),
            ),
        ];
        for (index, (settings, env, expected)) in cases.iter().enumerate() {
            assert_eq!(
                endpoint(settings, Service::Sts, env).as_deref(),
                *expected,
                "case {index}: env {env:?}"
            );
        }
    }

    #[test]
    fn services_section_applies_per_service() {
        let settings = settings(true, true, false);
        assert_eq!(
            endpoint(&settings, Service::Iam, &[]).as_deref(),
            Some(PROFILE_GLOBAL)
        );
        assert_eq!(
            endpoint(&settings, Service::Sts, &[]).as_deref(),
            Some(PROFILE_STS)
        );
    }

    #[test]
    fn endpoint_origin_names_the_setting() {
        let origins: Vec<String> = [&[ENV_STS, ENV_GLOBAL][..], &[ENV_GLOBAL], &[]]
            .iter()
            .filter_map(|env| endpoint_and_origin(&settings(true, true, false), Service::Sts, env))
            .map(|(_, origin)| origin)
            .collect();
        assert_eq!(
            origins,
            [
                "AWS_ENDPOINT_URL_STS",
                "AWS_ENDPOINT_URL",
                "the sts endpoint_url in [services local] of the config file",
            ]
        );

        let (_, origin) =
            endpoint_and_origin(&settings(true, false, false), Service::Sts, &[]).unwrap();
        assert_eq!(origin, "the profile's endpoint_url");
    }
}
