//! Command-line flags, each defined once with its help text, environment
//! variable and default next to it.
//!
//! The flags, short names, environment variables and defaults are those of
//! the original Go awsu, so that its users can switch without relearning.
//! Where the original's code used another spelling than its README (for
//! example `--mfa-serial` or `AWSU_TOKEN_GENERATOR`), both are accepted.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::duration;

/// Environment variables that the original awsu's code read in place of the
/// documented ones: (documented, alternative).
const ENV_ALIASES: &[(&str, &str)] = &[
    ("AWSU_GENERATOR", "AWSU_TOKEN_GENERATOR"),
    ("AWSU_SERIAL", "AWSU_MFA_SERIAL"),
];

/// MFA-protected AWS credentials from YubiKeys, cached, exported or passed to a program.
///
/// Without `--`, awsu prints shell `export` lines: eval "$(awsu -p prod)".
/// With `-- PROGRAM ARGS...`, awsu runs PROGRAM with the credentials in its environment.
#[derive(Debug, Parser)]
#[command(name = "awsu", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Program to run with the credentials, and its arguments (everything after `--`).
    #[arg(last = true, value_name = "PROGRAM")]
    pub program: Vec<OsString>,

    /// Prints a man page or a shell completion script built from these flags, then exits.
    #[arg(long, value_enum, value_name = "KIND", hide = true)]
    pub generate: Option<Generate>,

    /// Whether `--duration` or AWSU_DURATION was given rather than defaulted.
    #[arg(skip)]
    pub duration_is_explicit: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the current one-time password for the profile's MFA serial (or --mfa).
    Token,
    /// Create a virtual MFA device for an IAM user, store its secret on the YubiKey and enable it.
    ///
    /// Prints the device's serial (ARN) on stdout, ready to use as mfa_serial.
    Register(RegisterArgs),
    /// Deactivate an IAM user's virtual MFA device, remove it from the YubiKey and delete it.
    ///
    /// The device is the user's one whose credential is on the YubiKey, or --mfa SERIAL.
    /// Here --mfa names the device to remove, not the MFA serial of the calling profile.
    Unregister(UnregisterArgs),
    /// Sign in to the AWS console with the profile's credentials.
    ///
    /// Roles use their role credentials; profiles with long-term keys use
    /// GetFederationToken (whose console session has no MFA context and no IAM access).
    Console(ConsoleArgs),
}

/// Flags of `awsu register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// IAM user to register the device for.
    #[arg(value_name = "USERNAME")]
    pub username: String,

    /// Name of the virtual MFA device [default: USERNAME].
    #[arg(long, env = "AWSU_DEVICE_NAME", value_name = "NAME")]
    pub device_name: Option<String>,

    /// IAM path of the virtual MFA device, e.g. /team/ [default: /].
    #[arg(long, env = "AWSU_DEVICE_PATH", value_name = "PATH")]
    pub path: Option<String>,

    /// Require a touch of the YubiKey for each one-time password.
    #[arg(long, env = "AWSU_TOUCH", value_parser = clap::builder::BoolishValueParser::new())]
    pub touch: bool,

    /// Draw a QR code of the secret on stderr, as a backup for an authenticator app (--qr=false to skip).
    #[arg(
        short = 'q',
        long,
        env = "AWSU_QR",
        value_name = "BOOL",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub qr: bool,

    /// Issuer shown by authenticator apps for the QR code.
    #[arg(short = 'i', long, env = "AWSU_ISSUER", default_value = "Amazon")]
    pub issuer: String,
}

/// Flags of `awsu unregister`.
#[derive(Debug, Clone, Args)]
pub struct UnregisterArgs {
    /// IAM user whose virtual MFA device is removed.
    #[arg(value_name = "USERNAME")]
    pub username: String,
}

/// Flags of `awsu console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Open the sign-in URL in a browser (--open=false prints it on stdout instead).
    #[arg(
        short = 'o',
        long,
        env = "AWSU_OPEN",
        value_name = "BOOL",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub open: bool,

    /// Federation endpoint for sign-in tokens and the login URL [default: https://signin.aws.amazon.com/federation,
    /// or the GovCloud or China one, following the partition of the credentials' ARN].
    #[arg(long, env = "AWSU_FEDERATION_ENDPOINT", value_name = "URL")]
    pub federation_endpoint: Option<String>,
}

/// Flags shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Profile to use.
    #[arg(
        short = 'p',
        long,
        env = "AWS_PROFILE",
        default_value = "default",
        global = true
    )]
    pub profile: String,

    /// Shared config file [default: ~/.aws/config].
    #[arg(short = 'c', long, env = "AWS_CONFIG_FILE", global = true)]
    pub config_file: Option<PathBuf>,

    /// Shared credentials file [default: ~/.aws/credentials].
    #[arg(short = 's', long, env = "AWS_SHARED_CREDENTIALS_FILE", global = true)]
    pub shared_credentials_file: Option<PathBuf>,

    /// Neither read nor write cached short-term credentials.
    #[arg(short = 'n', long, env = "AWSU_NO_CACHE", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,

    /// Lifetime of session tokens and roles (e.g. 1h, 45m, 1h30m, 900s).
    #[arg(
        short = 'd',
        long,
        env = "AWSU_DURATION",
        default_value = "1h",
        value_parser = duration::parse,
        global = true
    )]
    pub duration: Duration,

    /// Minimum remaining lifetime of cached credentials; older ones are renewed.
    #[arg(
        short = 'r',
        long,
        env = "AWSU_GRACE",
        default_value = "45m",
        value_parser = duration::parse,
        global = true
    )]
    pub grace: Duration,

    /// Source of one-time passwords [env: AWSU_GENERATOR or AWSU_TOKEN_GENERATOR].
    #[arg(
        short = 'g',
        long,
        env = "AWSU_GENERATOR",
        hide_env = true,
        value_enum,
        default_value = "yubikey",
        global = true
    )]
    pub generator: Generator,

    /// MFA serial (ARN) to use, set or overriding the profile's mfa_serial [env: AWSU_SERIAL or AWSU_MFA_SERIAL].
    #[arg(
        short = 'm',
        long = "mfa",
        alias = "mfa-serial",
        env = "AWSU_SERIAL",
        hide_env = true,
        value_name = "SERIAL",
        global = true
    )]
    pub mfa_serial: Option<String>,

    /// YubiKey reader to use: a part of the reader's name.
    #[arg(long, env = "AWSU_READER", global = true)]
    pub reader: Option<String>,

    /// Log each step to stderr (never a secret).
    #[arg(short = 'v', long, env = "AWSU_VERBOSE", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub verbose: bool,
}

/// Artifacts generated from the flag definitions, for packagers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page, in roff.
    Man,
    CompleteBash,
    CompleteZsh,
    CompleteFish,
}

impl Generate {
    /// Writes the man page or completion script for `command` to `output`.
    pub fn write(
        self,
        mut command: clap::Command,
        output: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        use clap_complete::Shell;

        let shell = match self {
            Generate::Man => return clap_mangen::Man::new(command).render(output),
            Generate::CompleteBash => Shell::Bash,
            Generate::CompleteZsh => Shell::Zsh,
            Generate::CompleteFish => Shell::Fish,
        };
        clap_complete::generate(shell, &mut command, "awsu", output);
        Ok(())
    }
}

/// Source of one-time passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generator {
    /// Computed by the YubiKey's OATH applet.
    Yubikey,
    /// Typed by hand at a prompt.
    Manual,
}

impl Cli {
    /// Parses the process arguments and environment, exiting with clap's
    /// message on a usage error.
    pub fn parse_env() -> Cli {
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        cli.apply_env_aliases(&matches, |name| std::env::var_os(name));
        cli.duration_is_explicit = !is_default(&matches, "duration");
        cli
    }

    /// Fills flags left at their default from the alternative environment
    /// variables the original awsu's code read.
    fn apply_env_aliases(
        &mut self,
        matches: &ArgMatches,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) {
        for (documented, alternative) in ENV_ALIASES {
            let Some(value) = lookup(alternative) else {
                continue;
            };
            let value = value.to_string_lossy().into_owned();

            match *documented {
                "AWSU_GENERATOR" if is_default(matches, "generator") => {
                    match Generator::from_str(&value, true) {
                        Ok(generator) => self.global.generator = generator,
                        Err(_) => clap::Error::raw(
                            clap::error::ErrorKind::InvalidValue,
                            format!(
                                "invalid value '{value}' in {alternative}: use yubikey or manual\n"
                            ),
                        )
                        .exit(),
                    }
                }
                "AWSU_SERIAL" if is_default(matches, "mfa_serial") => {
                    self.global.mfa_serial = Some(value);
                }
                _ => {}
            }
        }
    }
}

fn is_default(matches: &ArgMatches, id: &str) -> bool {
    !matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Cli, ArgMatches) {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("awsu").chain(args.iter().copied()))
            .unwrap();
        (Cli::from_arg_matches(&matches).unwrap(), matches)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn program_after_double_dash_is_verbatim() {
        let (cli, _) = parse(&["-p", "prod", "--", "aws", "-p", "--", "x"]);
        assert_eq!(cli.global.profile, "prod");
        assert_eq!(cli.program, vec!["aws", "-p", "--", "x"]);
    }

    #[test]
    fn generated_man_page_lists_flags() {
        let mut page = Vec::new();
        Generate::Man.write(Cli::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains("\\-\\-no\\-cache"),
            "the man page lacks --no-cache"
        );
        assert!(
            page.contains("[default: 45m]"),
            "the man page lacks the defaults"
        );
    }

    #[test]
    fn generated_completions_name_subcommands() {
        let mut script = Vec::new();
        Generate::CompleteBash
            .write(Cli::command(), &mut script)
            .unwrap();
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("register"));
        assert!(script.contains("--grace"));
    }

    #[test]
    fn flags_before_subcommand_are_accepted() {
        let (cli, _) = parse(&["-p", "prod", "-g", "manual", "token"]);
        assert_eq!(cli.global.profile, "prod");
        assert_eq!(cli.global.generator, Generator::Manual);
        assert!(matches!(cli.command, Some(Command::Token)));
    }

    #[test]
    fn boolean_env_values_accept_digits() {
        // A variable name used by this test alone, so no other test reads it.
        std::env::set_var("AWSU_TEST_BOOLEAN_DIGIT", "1");
        let command = Cli::command().mut_arg("no_cache", |arg| arg.env("AWSU_TEST_BOOLEAN_DIGIT"));
        let matches = command.try_get_matches_from(["awsu"]).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        assert!(cli.global.no_cache);
    }

    #[test]
    fn mfa_serial_alias_is_accepted() {
        let (cli, _) = parse(&["--mfa-serial", "arn:aws:iam::123456789012:mfa/a"]);
        assert_eq!(
            cli.global.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/a")
        );
    }

    #[test]
    fn durations_use_go_syntax() {
        let (cli, _) = parse(&["-d", "1h30m", "-r", "90s"]);
        assert_eq!(cli.global.duration, Duration::from_secs(5400));
        assert_eq!(cli.global.grace, Duration::from_secs(90));
    }

    #[test]
    fn register_flags_parse() {
        let (cli, _) = parse(&["register", "alice", "-p", "admin"]);
        let Some(Command::Register(args)) = cli.command else {
            panic!("expected register");
        };
        assert_eq!(args.username, "alice");
        assert!(args.qr);
        assert_eq!(args.issuer, "Amazon");
        assert_eq!(cli.global.profile, "admin");

        for flag in ["--qr=false", "-q=false", "--qr=0", "--qr=no"] {
            let (cli, _) = parse(&["register", "alice", flag]);
            let Some(Command::Register(args)) = cli.command else {
                panic!("expected register");
            };
            assert!(!args.qr, "{flag}");
        }

        let (cli, _) = parse(&[
            "register",
            "bob",
            "--qr",
            "--device-name",
            "laptop",
            "--path",
            "/team/",
            "--touch",
            "-i",
            "ACME",
        ]);
        let Some(Command::Register(args)) = cli.command else {
            panic!("expected register");
        };
        assert!(args.qr);
        assert!(args.touch);
        assert_eq!(args.device_name.as_deref(), Some("laptop"));
        assert_eq!(args.path.as_deref(), Some("/team/"));
        assert_eq!(args.issuer, "ACME");
    }

    #[test]
    fn console_open_flag_parses() {
        let (cli, _) = parse(&["console"]);
        let Some(Command::Console(args)) = cli.command else {
            panic!("expected console");
        };
        assert!(args.open);

        let (cli, _) = parse(&[
            "console",
            "--open=false",
            "--federation-endpoint",
            "http://127.0.0.1:1/f",
        ]);
        let Some(Command::Console(args)) = cli.command else {
            panic!("expected console");
        };
        assert!(!args.open);
        assert_eq!(
            args.federation_endpoint.as_deref(),
            Some("http://127.0.0.1:1/f")
        );
    }

    #[test]
    fn unregister_takes_mfa() {
        let (cli, _) = parse(&[
            "unregister",
            "alice",
            "--mfa",
            "arn:aws:iam::123456789012:mfa/a",
        ]);
        let Some(Command::Unregister(args)) = &cli.command else {
            panic!("expected unregister");
        };
        assert_eq!(args.username, "alice");
        assert_eq!(
            cli.global.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/a")
        );
    }

    #[test]
    fn alternative_env_fills_defaults_only() {
        let (mut cli, matches) = parse(&[]);
        cli.apply_env_aliases(&matches, |name| match name {
            "AWSU_TOKEN_GENERATOR" => Some("manual".into()),
            "AWSU_MFA_SERIAL" => Some("arn:aws:iam::123456789012:mfa/b".into()),
            _ => None,
        });
        assert_eq!(cli.global.generator, Generator::Manual);
        assert_eq!(
            cli.global.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/b")
        );

        let (mut cli, matches) = parse(&["-g", "yubikey", "-m", "arn:aws:iam::123456789012:mfa/c"]);
        cli.apply_env_aliases(&matches, |name| match name {
            "AWSU_TOKEN_GENERATOR" => Some("manual".into()),
            "AWSU_MFA_SERIAL" => Some("arn:aws:iam::123456789012:mfa/b".into()),
            _ => None,
        });
        assert_eq!(cli.global.generator, Generator::Yubikey);
        assert_eq!(
            cli.global.mfa_serial.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/c")
        );
    }
}
