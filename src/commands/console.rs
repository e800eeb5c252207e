//! `awsu console`: sign in to the AWS Management Console through the
//! federation endpoint, as AWS documents for custom identity brokers.
//!
//! The profile's credentials are exchanged for a sign-in token
//! (`Action=getSigninToken`), and the login URL that carries the token
//! (`Action=login`) is opened in a browser or printed. Roles use their own
//! temporary credentials. Long-term keys cannot be used at the federation
//! endpoint, and neither can session tokens, so such profiles first call
//! GetFederationToken with the long-term keys.

use std::process::{Command, Stdio};
use std::time::Duration;

use aws_smithy_async::future::timeout::Timeout;
use aws_smithy_async::rt::sleep::{AsyncSleep, TokioSleep};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;

use crate::aws::{self, Service};
use crate::chain::Chain;
use crate::cli::{Cli, ConsoleArgs};
use crate::commands::url_encode;
use crate::credentials::{Credentials, Secret};
use crate::error::Error;
use crate::profile::Profile;

/// Time to establish a connection to the federation endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Time to wait for the first byte of the federation endpoint's response.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound for the whole sign-in token request, as for AWS API calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Range of the console session that getSigninToken accepts as SessionDuration, in seconds.
const SESSION_DURATION_SECONDS: std::ops::RangeInclusive<u64> = 900..=43_200;

/// GetFederationToken's limit on the federated user's name, in characters.
const FEDERATION_NAME_MAX_LENGTH: usize = 32;

/// The session policy for GetFederationToken. The federated user's
/// permissions are the intersection of this policy and the IAM user's, so
/// allowing everything here passes the user's own permissions through.
const PASS_THROUGH_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// Issuer named in the login URL.
const ISSUER: &str = "awsu";

/// An AWS partition, which decides the sign-in and console hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsUsGov,
    AwsCn,
}

impl Partition {
    /// Returns the partition of an ARN, `None` for an unknown one or no ARN.
    pub fn from_arn(arn: &str) -> Option<Partition> {
        let mut parts = arn.split(':');
        if parts.next() != Some("arn") {
            return None;
        }
        match parts.next()? {
            "aws" => Some(Partition::Aws),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            "aws-cn" => Some(Partition::AwsCn),
            _ => None,
        }
    }

    /// Returns the partition a region belongs to.
    pub fn from_region(region: Option<&str>) -> Partition {
        match region {
            Some(region) if region.starts_with("us-gov-") => Partition::AwsUsGov,
            Some(region) if region.starts_with("cn-") => Partition::AwsCn,
            _ => Partition::Aws,
        }
    }

    pub fn signin_host(self) -> &'static str {
        match self {
            Partition::Aws => "signin.aws.amazon.com",
            Partition::AwsUsGov => "signin.amazonaws-us-gov.com",
            Partition::AwsCn => "signin.amazonaws.cn",
        }
    }

    pub fn console_host(self) -> &'static str {
        match self {
            Partition::Aws => "console.aws.amazon.com",
            Partition::AwsUsGov => "console.amazonaws-us-gov.com",
            Partition::AwsCn => "console.amazonaws.cn",
        }
    }

    pub fn federation_endpoint(self) -> String {
        format!("https://{}/federation", self.signin_host())
    }
}

/// The source of the console credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// The chain's last role. `chained` is true when it was assumed with
    /// temporary credentials, which limits its console session to one hour.
    Role { role_arn: String, chained: bool },
    /// GetFederationToken with the long-term keys. `skips_mfa` is true when
    /// the profile would otherwise use a session token with MFA.
    FederationToken { skips_mfa: bool },
    /// The profile's temporary keys, as they are.
    TemporaryKeys,
}

impl Source {
    pub fn of(chain: &Chain) -> Source {
        if let Some(role) = chain.roles.last() {
            let chained = chain.uses_session_token()
                || chain.base.credentials.is_temporary()
                || chain.roles.len() > 1;
            Source::Role {
                role_arn: role.role_arn.clone(),
                chained,
            }
        } else if chain.base.credentials.is_temporary() {
            Source::TemporaryKeys
        } else {
            Source::FederationToken {
                skips_mfa: chain.uses_session_token(),
            }
        }
    }
}

/// Runs `awsu console`.
pub fn run(cli: &Cli, args: &ConsoleArgs) -> Result<(), Error> {
    let global = &cli.global;
    let profile = Profile::load(cli, global.mfa_serial.as_deref())?;
    let chain = &profile.chain;
    let region = console_region(&profile.settings);
    let context = aws::Context::new(profile.settings.clone())?;

    let source = Source::of(chain);
    let (credentials, partition, session_duration) = match &source {
        Source::Role { role_arn, chained } => {
            let credentials = profile.credentials(cli)?;
            let partition = Partition::from_arn(role_arn)
                .unwrap_or_else(|| Partition::from_region(region.as_deref()));
            let session_duration = if *chained {
                crate::terminal::notice(&format!(
                    "awsu: the role of profile '{}' is assumed with temporary credentials (role chaining), \
                     so AWS limits its console session to one hour and awsu sends no SessionDuration",
                    global.profile
                ));
                None
            } else {
                Some(role_duration(cli, chain))
            };
            (credentials, partition, session_duration)
        }
        Source::FederationToken { skips_mfa } => {
            if *skips_mfa {
                crate::terminal::notice(&format!(
                    "awsu: the console session of profile '{}' comes from GetFederationToken with its long-term keys, \
                     so it carries no MFA context: actions that require MFA will be denied",
                    global.profile
                ));
            }
            let name = federation_name(&crate::profile::default_session_name());
            let (credentials, user_arn) = get_federation_token(
                &context,
                &chain.base.profile,
                &chain.base.credentials,
                &name,
                global.duration.as_secs() as i32,
            )?;
            let partition = Partition::from_arn(&user_arn)
                .unwrap_or_else(|| Partition::from_region(region.as_deref()));
            (credentials, partition, None)
        }
        Source::TemporaryKeys => (
            chain.base.credentials.clone(),
            Partition::from_region(region.as_deref()),
            None,
        ),
    };

    if let Some(seconds) = session_duration {
        if !SESSION_DURATION_SECONDS.contains(&seconds) {
            return Err(Error::InvalidDuration(format!(
                "invalid console session duration {}: AWS accepts 15m to 12h; change --duration",
                crate::duration::format(Duration::from_secs(seconds))
            )));
        }
    }

    let endpoint = args
        .federation_endpoint
        .clone()
        .unwrap_or_else(|| partition.federation_endpoint());
    let token_url = signin_token_url(&endpoint, &session_json(&credentials), session_duration);
    let token = fetch_signin_token(&context, &endpoint, &token_url)?;
    let url = login_url(
        &endpoint,
        &destination(partition, region.as_deref()),
        &token,
    );

    if args.open {
        open_in_browser(&url)
    } else {
        print!("{url}");
        Ok(())
    }
}

/// Returns the duration the chain's last role was requested for, as the
/// session resolver chooses it.
fn role_duration(cli: &Cli, chain: &Chain) -> u64 {
    let flag = cli.global.duration.as_secs();
    match chain.roles.last().and_then(|role| role.duration_seconds) {
        Some(seconds) if !cli.duration_is_explicit => seconds,
        _ => flag,
    }
}

/// Returns the region for the console: the environment's, then the profile's.
fn console_region(settings: &aws::Settings) -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(|| settings.profile_region.clone())
}

/// Shortens a session name to GetFederationToken's limit.
fn federation_name(session_name: &str) -> String {
    session_name
        .chars()
        .take(FEDERATION_NAME_MAX_LENGTH)
        .collect()
}

/// Builds the `Session` JSON that getSigninToken expects.
pub fn session_json(credentials: &Credentials) -> String {
    serde_json::json!({
        "sessionId": credentials.access_key_id,
        "sessionKey": credentials.secret_access_key.expose(),
        "sessionToken": credentials
            .session_token
            .as_ref()
            .map(|token| token.expose())
            .unwrap_or(""),
    })
    .to_string()
}

/// Builds the getSigninToken request URL. It contains the secret key, so it
/// is never logged or shown.
pub fn signin_token_url(
    endpoint: &str,
    session_json: &str,
    session_duration: Option<u64>,
) -> String {
    let mut url = format!(
        "{endpoint}{}Action=getSigninToken",
        query_separator(endpoint)
    );
    if let Some(seconds) = session_duration {
        url.push_str(&format!("&SessionDuration={seconds}"));
    }
    url.push_str(&format!("&Session={}", url_encode(session_json)));
    url
}

/// Builds the login URL that carries the sign-in token.
pub fn login_url(endpoint: &str, destination: &str, token: &str) -> String {
    format!(
        "{endpoint}{}Action=login&Issuer={}&Destination={}&SigninToken={}",
        query_separator(endpoint),
        url_encode(ISSUER),
        url_encode(destination),
        url_encode(token)
    )
}

fn query_separator(endpoint: &str) -> char {
    if endpoint.contains('?') {
        '&'
    } else {
        '?'
    }
}

/// Returns the console home page of a partition, for a region if one is known.
pub fn destination(partition: Partition, region: Option<&str>) -> String {
    let home = format!("https://{}/console/home", partition.console_host());
    match region {
        Some(region) => format!("{home}?region={}", url_encode(region)),
        None => home,
    }
}

/// Calls GetFederationToken with long-term keys and returns the federated
/// user's credentials and ARN.
fn get_federation_token(
    context: &aws::Context,
    profile: &str,
    keys: &Credentials,
    name: &str,
    duration_seconds: i32,
) -> Result<(Credentials, String), Error> {
    tracing::info!(
        "calling STS GetFederationToken as '{name}' with {} ({duration_seconds}s)",
        keys.access_key_id
    );
    let request = context
        .sts(keys)
        .get_federation_token()
        .name(name)
        .policy(PASS_THROUGH_POLICY)
        .duration_seconds(duration_seconds)
        .send();
    let output = context.block_on(request).map_err(|error| {
        crate::aws_error::classify(
            context,
            Service::Sts,
            "GetFederationToken",
            profile,
            None,
            error,
        )
    })?;

    let missing = || Error::Service {
        operation: "GetFederationToken",
        profile: profile.to_owned(),
        message: "the response carried no credentials".to_owned(),
    };
    let credentials = output.credentials().ok_or_else(missing)?;
    let user_arn = output
        .federated_user()
        .map(|user| user.arn().to_owned())
        .unwrap_or_default();
    Ok((
        Credentials {
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: Secret::new(credentials.secret_access_key()),
            session_token: Some(Secret::new(credentials.session_token())),
            expiration: Some(credentials.expiration().secs()),
        },
        user_arn,
    ))
}

/// Requests a sign-in token from the federation endpoint. `url` carries the
/// credentials; messages name only `endpoint`.
fn fetch_signin_token(context: &aws::Context, endpoint: &str, url: &str) -> Result<String, Error> {
    tracing::info!("requesting a sign-in token from {endpoint}");
    let request = HttpRequest::get(url).map_err(|_| {
        Error::Other(format!(
            "invalid federation endpoint '{endpoint}': expected a URL such as https://signin.aws.amazon.com/federation"
        ))
    })?;
    let tls_context = federation_tls_context(&context.settings)?;
    let unreachable = |detail: String| {
        Error::Other(format!(
            "could not reach the federation endpoint {endpoint}: {detail}. \
             Check the network, HTTPS_PROXY, and AWSU_FEDERATION_ENDPOINT"
        ))
    };

    let result = context.block_on(async move {
        // Built inside the runtime, because the connector's timers need it.
        let connector = aws_smithy_http_client::Connector::builder()
            .proxy_config(ProxyConfig::from_env())
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .build(),
            )
            .sleep_impl(TokioSleep::new())
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls_context)
            .build();
        let exchange = async {
            let response = connector
                .call(request)
                .await
                .map_err(|error| crate::aws_error::root_cause(&error))?;
            let status = response.status().as_u16();
            let body = ByteStream::new(response.into_body())
                .collect()
                .await
                .map_err(|error| crate::aws_error::root_cause(&error))?
                .into_bytes();
            Ok::<_, String>((status, body))
        };
        let sleep = TokioSleep::new().sleep(REQUEST_TIMEOUT);
        Timeout::new(exchange, sleep)
            .await
            .map_err(|_| format!("no response within {}s", REQUEST_TIMEOUT.as_secs()))?
    });
    let (status, body) = result.map_err(unreachable)?;

    parse_signin_token(endpoint, status, &body)
}

/// Reads the `SigninToken` from the federation endpoint's response.
pub fn parse_signin_token(endpoint: &str, status: u16, body: &[u8]) -> Result<String, Error> {
    if status != 200 {
        let excerpt: String = String::from_utf8_lossy(body)
            .chars()
            .filter(|character| !character.is_control())
            .take(200)
            .collect();
        return Err(Error::Other(format!(
            "the federation endpoint {endpoint} rejected the sign-in token request with HTTP {status}: {excerpt}. \
             The credentials may have expired or may not be allowed to sign in to the console"
        )));
    }
    #[derive(serde::Deserialize)]
    struct Response {
        #[serde(rename = "SigninToken")]
        signin_token: String,
    }
    let response: Response = serde_json::from_slice(body).map_err(|error| {
        Error::Other(format!(
            "the federation endpoint {endpoint} returned no sign-in token ({error}): check AWSU_FEDERATION_ENDPOINT"
        ))
    })?;
    if response.signin_token.is_empty() {
        return Err(Error::Other(format!(
            "the federation endpoint {endpoint} returned an empty sign-in token"
        )));
    }
    Ok(response.signin_token)
}

/// Builds the TLS settings of the SDK clients (AWS_CA_BUNDLE or the
/// profile's `ca_bundle` replace the system's roots), for the federation endpoint.
fn federation_tls_context(settings: &aws::Settings) -> Result<TlsContext, Error> {
    let ca_bundle = std::env::var("AWS_CA_BUNDLE")
        .ok()
        .filter(|path| !path.is_empty())
        .or_else(|| settings.profile_ca_bundle.clone());
    let trust_store = match ca_bundle {
        None => TrustStore::default(),
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|source| Error::CaBundle {
                path: path.into(),
                source,
            })?;
            TrustStore::empty().with_pem_certificate(pem)
        }
    };
    TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .map_err(|error| Error::Other(format!("invalid TLS settings: {error}")))
}

/// Opens `url` with the desktop's opener (`open` on macOS, else `xdg-open`).
fn open_in_browser(url: &str) -> Result<(), Error> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    tracing::info!("opening the console sign-in URL with {opener}");
    let status = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|error| {
            Error::Other(format!(
                "could not run {opener} to open the console ({error}): use --open=false to print the URL instead"
            ))
        })?;
    if !status.success() {
        return Err(Error::Other(format!(
            "{opener} failed to open the console ({status}): use --open=false to print the URL instead"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Base, RoleStep, Serial};

    fn query_pairs(url: &str) -> Vec<(String, String)> {
        let query = url.split_once('?').expect("the URL has a query").1;
        query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').expect("name=value");
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .expect("UTF-8")
                    .into_owned();
                (name.to_owned(), value)
            })
            .collect()
    }

    fn keys(session_token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: session_token.map(Secret::new),
            expiration: None,
        }
    }

    fn chain(temporary_base: bool, serial: bool, roles: usize) -> Chain {
        Chain {
            profiles: vec!["p".to_owned()],
            base: Base {
                profile: "base".to_owned(),
                credentials: keys(temporary_base.then_some("token")),
            },
            serial: serial.then(|| Serial {
                arn: "arn:aws:iam::123456789012:mfa/alice".to_owned(),
                profile: Some("base".to_owned()),
            }),
            roles: (0..roles)
                .map(|index| RoleStep {
                    profile: format!("role{index}"),
                    role_arn: format!("arn:aws:iam::123456789012:role/r{index}"),
                    external_id: None,
                    session_name: "awsu".to_owned(),
                    duration_seconds: None,
                })
                .collect(),
            region: None,
            profile_region: None,
        }
    }

    #[test]
    fn partition_follows_arn() {
        let cases = [
            ("arn:aws:iam::123456789012:role/a", Some(Partition::Aws)),
            (
                "arn:aws-us-gov:iam::123456789012:role/a",
                Some(Partition::AwsUsGov),
            ),
            (
                "arn:aws-cn:sts::123456789012:federated-user/a",
                Some(Partition::AwsCn),
            ),
            ("arn:aws-iso:iam::123456789012:role/a", None),
            ("not an arn", None),
        ];
        for (arn, expected) in cases {
            assert_eq!(Partition::from_arn(arn), expected, "{arn}");
        }
    }

    #[test]
    fn partition_hosts() {
        assert_eq!(
            Partition::Aws.federation_endpoint(),
            "https://signin.aws.amazon.com/federation"
        );
        assert_eq!(
            Partition::AwsUsGov.federation_endpoint(),
            "https://signin.amazonaws-us-gov.com/federation"
        );
        assert_eq!(
            Partition::AwsCn.federation_endpoint(),
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(Partition::Aws.console_host(), "console.aws.amazon.com");
        assert_eq!(
            Partition::AwsUsGov.console_host(),
            "console.amazonaws-us-gov.com"
        );
        assert_eq!(Partition::AwsCn.console_host(), "console.amazonaws.cn");
    }

    #[test]
    fn partition_from_region() {
        assert_eq!(
            Partition::from_region(Some("us-gov-west-1")),
            Partition::AwsUsGov
        );
        assert_eq!(Partition::from_region(Some("cn-north-1")), Partition::AwsCn);
        assert_eq!(Partition::from_region(Some("eu-west-1")), Partition::Aws);
        assert_eq!(Partition::from_region(None), Partition::Aws);
    }

    #[test]
    fn session_json_carries_secret_as_session_key() {
        let json: serde_json::Value =
            serde_json::from_str(&session_json(&keys(Some("to+ken/=")))).unwrap();
        assert_eq!(json["sessionId"], "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            json["sessionKey"],
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        assert_eq!(json["sessionToken"], "to+ken/=");
    }

    #[test]
    fn token_url_encodes_session() {
        let session = session_json(&keys(Some("to+ken/=")));
        let url = signin_token_url(
            "https://signin.aws.amazon.com/federation",
            &session,
            Some(7200),
        );

        assert!(url.starts_with("https://signin.aws.amazon.com/federation?Action=getSigninToken&"));
        assert!(
            !url.contains('{') && !url.contains('"') && !url.contains('+'),
            "{url}"
        );
        assert_eq!(
            query_pairs(&url),
            vec![
                ("Action".to_owned(), "getSigninToken".to_owned()),
                ("SessionDuration".to_owned(), "7200".to_owned()),
                ("Session".to_owned(), session),
            ]
        );
    }

    #[test]
    fn token_url_omits_duration_when_not_allowed() {
        let url = signin_token_url("http://127.0.0.1:1/federation", "{}", None);
        assert!(!url.contains("SessionDuration"), "{url}");
    }

    #[test]
    fn login_url_encodes_every_value() {
        let destination = destination(Partition::Aws, Some("eu-west-1"));
        let url = login_url(
            "https://signin.aws.amazon.com/federation",
            &destination,
            "a+b/c=d&e",
        );

        assert!(!url.ends_with('\n'));
        assert_eq!(
            query_pairs(&url),
            vec![
                ("Action".to_owned(), "login".to_owned()),
                ("Issuer".to_owned(), "awsu".to_owned()),
                (
                    "Destination".to_owned(),
                    "https://console.aws.amazon.com/console/home?region=eu-west-1".to_owned()
                ),
                ("SigninToken".to_owned(), "a+b/c=d&e".to_owned()),
            ]
        );
    }

    #[test]
    fn destination_follows_partition() {
        assert_eq!(
            destination(Partition::AwsUsGov, Some("us-gov-west-1")),
            "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"
        );
        assert_eq!(
            destination(Partition::AwsCn, None),
            "https://console.amazonaws.cn/console/home"
        );
    }

    #[test]
    fn source_depends_on_chain() {
        assert_eq!(
            Source::of(&chain(false, false, 0)),
            Source::FederationToken { skips_mfa: false }
        );
        assert_eq!(
            Source::of(&chain(false, true, 0)),
            Source::FederationToken { skips_mfa: true }
        );
        assert_eq!(Source::of(&chain(true, false, 0)), Source::TemporaryKeys);
        assert_eq!(
            Source::of(&chain(false, false, 1)),
            Source::Role {
                role_arn: "arn:aws:iam::123456789012:role/r0".to_owned(),
                chained: false
            }
        );
        for (temporary, serial, roles) in [(false, true, 1), (true, false, 1), (false, false, 2)] {
            match Source::of(&chain(temporary, serial, roles)) {
                Source::Role { chained, .. } => assert!(chained, "{temporary} {serial} {roles}"),
                other => panic!("expected a role, got {other:?}"),
            }
        }
    }

    #[test]
    fn federation_name_fits_limit() {
        assert_eq!(federation_name("awsu-alice"), "awsu-alice");
        assert_eq!(federation_name(&"x".repeat(64)).len(), 32);
    }

    #[test]
    fn signin_token_is_parsed() {
        let endpoint = "http://127.0.0.1:1/federation";
        assert_eq!(
            parse_signin_token(endpoint, 200, br#"{"SigninToken":"abc"}"#).unwrap(),
            "abc"
        );
        let error = parse_signin_token(endpoint, 400, b"bad\nrequest")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("HTTP 400") && error.contains("badrequest"),
            "{error}"
        );
        assert!(parse_signin_token(endpoint, 200, b"<html>").is_err());
        assert!(parse_signin_token(endpoint, 200, br#"{"SigninToken":""}"#).is_err());
    }
}
