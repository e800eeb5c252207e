//! `awsu register USERNAME`: create a virtual MFA device, store its secret on
//! the YubiKey, and enable it with two consecutive codes from the card.
//! A failure after the device was created undoes what was done, so that
//! neither an unassigned device nor a stray card credential is left.

use std::io::Write;
use std::time::SystemTime;

use ykoath::Credential;

use crate::aws;
use crate::cli::{Cli, RegisterArgs};
use crate::commands::card::{self, Card};
use crate::commands::step_ledger;
use crate::credentials::Secret;
use crate::error::Error;
use crate::iam::{Iam, MfaDevices};
use crate::otp;
use crate::profile::Profile;
use crate::qr;
use crate::yubikey::credential_name;

/// Length of `aws/iam/123456789012:`, the part of a credential name before
/// the device's path and name.
const CREDENTIAL_NAME_PREFIX_LENGTH: usize = "aws/iam/123456789012:".len();

/// A registration request: the user and the device to create.
pub struct Request<'a> {
    pub user: &'a str,
    pub device_name: &'a str,
    pub path: Option<&'a str>,
    pub touch: bool,
}

/// A device that was created, stored on the card and enabled.
#[derive(Debug)]
pub struct Registered {
    pub serial: String,
    /// The seed as base32 text without padding, upper case.
    pub seed: Secret,
    pub credential_name: String,
    /// The time step of the second code sent to EnableMFADevice.
    pub last_step: u64,
}

/// Runs `awsu register`.
pub fn run(cli: &Cli, args: &RegisterArgs) -> Result<(), Error> {
    let request = Request {
        user: &args.username,
        device_name: args.device_name.as_deref().unwrap_or(&args.username),
        path: args.path.as_deref(),
        touch: args.touch,
    };
    check_name_fits(&request)?;

    let profile = Profile::load(cli, cli.global.mfa_serial.as_deref())?;
    let credentials = profile.credentials(cli)?;
    let ledger = step_ledger()?;

    // The card is opened before the device is created, so that a missing
    // YubiKey costs nothing to undo.
    let mut applet = card::open_single_applet(cli.global.reader.as_deref())?;
    let context = aws::Context::new(profile.settings.clone())?;
    let iam = Iam::new(&context, &credentials, &cli.global.profile);
    let registered = register(&iam, &mut applet.session, &request, &|| {
        otp::time_step(SystemTime::now())
    })?;
    drop(applet);

    // AWS accepts each code once, so the next run must wait for a later step.
    ledger.record(&registered.serial, registered.last_step);

    if args.qr {
        show_qr(&args.issuer, &request, &registered);
    }
    crate::terminal::notice(&format!(
        "awsu: registered {} for user '{}' and stored it on the YubiKey as '{}'; use it as mfa_serial",
        registered.serial, request.user, registered.credential_name
    ));
    println!("{}", registered.serial);
    Ok(())
}

/// Rejects a device whose credential name would be longer than the YubiKey
/// stores, before anything is created.
pub fn check_name_fits(request: &Request<'_>) -> Result<(), Error> {
    let path = request.path.unwrap_or("/").trim_start_matches('/');
    let length = CREDENTIAL_NAME_PREFIX_LENGTH + path.len() + request.device_name.len();
    if length > ykoath::credential::MAX_NAME_LENGTH {
        return Err(Error::Other(format!(
            "the credential name 'aws/iam/ACCOUNT:{path}{}' would be {length} bytes, but the YubiKey stores at most {}: \
             choose a shorter --device-name or --path",
            request.device_name,
            ykoath::credential::MAX_NAME_LENGTH
        )));
    }
    Ok(())
}

/// Creates, stores and enables the device. On a failure after the device
/// was created, undoes what was done and lists the undone steps in the error.
pub fn register(
    iam: &dyn MfaDevices,
    card: &mut dyn Card,
    request: &Request<'_>,
    current_step: &dyn Fn() -> u64,
) -> Result<Registered, Error> {
    let device = iam.create_virtual_mfa_device(request.device_name, request.path)?;
    tracing::info!("created the virtual MFA device {}", device.serial);

    let mut progress = Progress::default();
    match store_and_enable(
        iam,
        card,
        request,
        &device.serial,
        &device.seed,
        current_step,
        &mut progress,
    ) {
        Ok(registered) => Ok(registered),
        Err(error) => Err(undo(
            iam,
            card,
            request.user,
            &device.serial,
            &progress,
            error,
        )),
    }
}

/// The steps register completed after creating the device, for the undo.
#[derive(Default)]
struct Progress {
    /// The credential stored on the card.
    card_credential: Option<String>,
    /// Whether EnableMFADevice was sent (it may have taken effect even if it failed).
    enable_sent: bool,
}

fn store_and_enable(
    iam: &dyn MfaDevices,
    card: &mut dyn Card,
    request: &Request<'_>,
    serial: &str,
    seed: &Secret,
    current_step: &dyn Fn() -> u64,
    progress: &mut Progress,
) -> Result<Registered, Error> {
    let seed = normalize_seed(seed.expose());
    let secret = decode_seed(&seed, serial)?;
    let name = credential_name(serial)?;

    let existing = card
        .credential_names()
        .map_err(|error| step_failed("listing the credentials on the YubiKey", error))?;
    if existing.contains(&name) {
        tracing::warn!(
            "the YubiKey already holds a credential '{name}', left from an earlier device of that name; replacing it"
        );
    }

    let mut credential = Credential::totp(name.clone(), secret);
    credential.touch = request.touch;
    card.put(&credential)
        .map_err(|error| step_failed("storing the secret on the YubiKey", error))?;
    progress.card_credential = Some(name.clone());
    tracing::info!("stored the OATH credential '{name}' on the YubiKey");

    // Two consecutive steps computed at once: the card takes the step as its
    // challenge, so there is no need to wait 30 seconds for the second code.
    // The previous and the current step are used, because AWS accepts one
    // step either way, and the next run then waits at most one step.
    let step = current_step();
    let first = card
        .code(&name, step - 1)
        .map_err(|error| step_failed("computing the first code on the YubiKey", error))?;
    let second = card
        .code(&name, step)
        .map_err(|error| step_failed("computing the second code on the YubiKey", error))?;

    progress.enable_sent = true;
    iam.enable_mfa_device(request.user, serial, [&first, &second])?;
    tracing::info!("enabled {serial} for user '{}'", request.user);

    Ok(Registered {
        serial: serial.to_owned(),
        seed: Secret::new(seed),
        credential_name: name,
        last_step: step,
    })
}

fn step_failed(step: &str, error: Error) -> Error {
    Error::Other(format!("{step} failed: {error}"))
}

/// Removes the card credential and deletes the device, and returns `error`
/// extended with what was undone and what could not be.
fn undo(
    iam: &dyn MfaDevices,
    card: &mut dyn Card,
    user: &str,
    serial: &str,
    progress: &Progress,
    error: Error,
) -> Error {
    let mut undone = Vec::new();
    let mut failed = Vec::new();

    if let Some(name) = &progress.card_credential {
        match card.delete(name) {
            Ok(()) => undone.push(format!(
                "removed the OATH credential '{name}' from the YubiKey"
            )),
            Err(delete_error) => failed.push(format!(
                "removing the OATH credential '{name}' from the YubiKey failed ({delete_error}); \
                 remove it with `ykman oath accounts delete '{name}'`"
            )),
        }
    }

    let mut deleted = iam.delete_virtual_mfa_device(serial);
    if deleted.is_err() && progress.enable_sent {
        // EnableMFADevice may have taken effect although it returned an
        // error (a timeout), and IAM deletes only unassigned devices.
        tracing::debug!("deleting {serial} failed; deactivating it first, then deleting again");
        if iam.deactivate_mfa_device(user, serial).is_ok() {
            undone.push(format!("deactivated {serial} for user '{user}'"));
            deleted = iam.delete_virtual_mfa_device(serial);
        }
    }
    match deleted {
        Ok(()) => undone.push(format!("deleted the virtual MFA device {serial}")),
        Err(delete_error) => failed.push(format!(
            "deleting the virtual MFA device {serial} failed ({delete_error}); \
             delete it with `awsu unregister {user} --mfa {serial}`"
        )),
    }

    for step in &undone {
        tracing::info!("undo: {step}");
    }
    let mut message = format!("registering an MFA device for user '{user}' failed: {error}");
    if !undone.is_empty() {
        message.push_str(&format!(". Undone: {}", undone.join("; ")));
    }
    if !failed.is_empty() {
        message.push_str(&format!(". Not undone: {}", failed.join("; ")));
    }
    Error::Other(message)
}

/// Removes spaces and padding and upper-cases base32 text, as authenticator
/// apps and the base32 decoder expect it.
fn normalize_seed(seed: &str) -> String {
    seed.chars()
        .filter(|character| !character.is_whitespace() && *character != '=')
        .map(|character| character.to_ascii_uppercase())
        .collect()
}

fn decode_seed(seed: &str, serial: &str) -> Result<Vec<u8>, Error> {
    let invalid = || {
        Error::Other(format!(
            "the seed IAM returned for {serial} is not valid base32 text, so it cannot be stored on the YubiKey"
        ))
    };
    let secret = data_encoding::BASE32_NOPAD
        .decode(seed.as_bytes())
        .map_err(|_| invalid())?;
    if secret.is_empty() {
        return Err(invalid());
    }
    Ok(secret)
}

/// Draws the QR code of the key URI on stderr, with the secret as text for
/// terminals too small for the code. Nothing here goes to stdout or the log.
/// The device is registered by now, so a failure here is only a warning.
fn show_qr(issuer: &str, request: &Request<'_>, registered: &Registered) {
    let account = match account_of(&registered.serial) {
        Some(account) => format!("{}@{account}", request.user),
        None => request.user.to_owned(),
    };
    let uri = qr::otpauth_uri(issuer, &account, registered.seed.expose());
    let drawing = qr::render(&uri).unwrap_or_else(|error| {
        tracing::warn!("{error}");
        String::new()
    });

    let text = format!(
        "Scan this QR code with an authenticator app to keep a backup of the device \
         (TOTP, SHA-1, 6 digits, 30 s):\n{drawing}Issuer: {issuer}, account: {account}\n\
         Secret (base32): {}\n",
        qr::group_secret(registered.seed.expose())
    );
    let mut stderr = std::io::stderr().lock();
    if let Err(error) = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush())
    {
        tracing::warn!("could not write the QR code to stderr: {error}");
    }
}

/// Returns the account id of an ARN.
fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|account| !account.is_empty())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::iam::NewDevice;

    const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
    const NAME: &str = "aws/iam/123456789012:alice";

    /// IAM that records each call and fails the operations named in `failing`.
    #[derive(Default)]
    struct FakeIam {
        seed: String,
        failing: HashSet<&'static str>,
        calls: RefCell<Vec<String>>,
        devices: RefCell<HashMap<String, Option<String>>>,
    }

    impl FakeIam {
        fn new() -> FakeIam {
            FakeIam {
                seed: SEED.to_owned(),
                ..FakeIam::default()
            }
        }

        fn failing(mut self, operation: &'static str) -> FakeIam {
            self.failing.insert(operation);
            self
        }

        fn call(&self, operation: &'static str, detail: String) -> Result<(), Error> {
            self.calls
                .borrow_mut()
                .push(format!("{operation} {detail}"));
            if self.failing.contains(operation) {
                return Err(Error::Other(format!("{operation} is broken")));
            }
            Ok(())
        }

        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl MfaDevices for FakeIam {
        fn create_virtual_mfa_device(
            &self,
            name: &str,
            path: Option<&str>,
        ) -> Result<NewDevice, Error> {
            self.call("create", format!("{name} {}", path.unwrap_or("/")))?;
            let path = path.unwrap_or("/").trim_start_matches('/');
            let serial = format!("arn:aws:iam::123456789012:mfa/{path}{name}");
            self.devices.borrow_mut().insert(serial.clone(), None);
            Ok(NewDevice {
                serial,
                seed: Secret::new(self.seed.clone()),
            })
        }

        fn enable_mfa_device(
            &self,
            user: &str,
            serial: &str,
            codes: [&str; 2],
        ) -> Result<(), Error> {
            self.call(
                "enable",
                format!("{user} {serial} {} {}", codes[0], codes[1]),
            )?;
            self.devices
                .borrow_mut()
                .insert(serial.to_owned(), Some(user.to_owned()));
            Ok(())
        }

        fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, Error> {
            self.call("list", user.to_owned())?;
            Ok(Vec::new())
        }

        fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), Error> {
            self.call("deactivate", format!("{user} {serial}"))?;
            self.devices.borrow_mut().insert(serial.to_owned(), None);
            Ok(())
        }

        fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), Error> {
            self.call("delete", serial.to_owned())?;
            let assigned = self.devices.borrow().get(serial).cloned().flatten();
            if assigned.is_some() {
                return Err(Error::Other(
                    "DeleteConflict: the device is assigned".into(),
                ));
            }
            self.devices.borrow_mut().remove(serial);
            Ok(())
        }
    }

    /// A card whose codes are the step number, failing the operations in `failing`.
    #[derive(Default)]
    struct FakeCard {
        credentials: HashMap<String, Credential>,
        failing: HashSet<&'static str>,
        calls: Vec<String>,
    }

    impl FakeCard {
        fn failing(operation: &'static str) -> FakeCard {
            FakeCard {
                failing: HashSet::from([operation]),
                ..FakeCard::default()
            }
        }

        fn call(&mut self, operation: &'static str, detail: String) -> Result<(), Error> {
            self.calls.push(format!("{operation} {detail}"));
            if self.failing.contains(operation) {
                return Err(ykoath::Error::Transport(format!("{operation} is broken")).into());
            }
            Ok(())
        }
    }

    impl Card for FakeCard {
        fn credential_names(&mut self) -> Result<Vec<String>, Error> {
            self.call("list", String::new())?;
            Ok(self.credentials.keys().cloned().collect())
        }

        fn put(&mut self, credential: &Credential) -> Result<(), Error> {
            self.call("put", credential.name.clone())?;
            self.credentials
                .insert(credential.name.clone(), credential.clone());
            Ok(())
        }

        fn code(&mut self, name: &str, step: u64) -> Result<String, Error> {
            self.call("code", format!("{name} {step}"))?;
            Ok(format!("{:06}", step % 1_000_000))
        }

        fn delete(&mut self, name: &str) -> Result<(), Error> {
            self.call("delete", name.to_owned())?;
            self.credentials.remove(name);
            Ok(())
        }
    }

    fn alice() -> Request<'static> {
        Request {
            user: "alice",
            device_name: "alice",
            path: None,
            touch: false,
        }
    }

    const STEP: u64 = 58_000_123;

    #[test]
    fn register_stores_and_enables() {
        let iam = FakeIam::new();
        let mut card = FakeCard::default();

        let registered = register(&iam, &mut card, &alice(), &|| STEP).unwrap();

        assert_eq!(registered.serial, SERIAL);
        assert_eq!(registered.credential_name, NAME);
        assert_eq!(registered.last_step, STEP);
        assert_eq!(registered.seed.expose(), SEED);
        assert_eq!(
            iam.calls(),
            vec![
                "create alice /".to_owned(),
                format!("enable alice {SERIAL} 000122 000123"),
            ]
        );
        let stored = &card.credentials[NAME];
        assert_eq!(
            stored.secret,
            data_encoding::BASE32_NOPAD.decode(SEED.as_bytes()).unwrap()
        );
        assert_eq!(stored.digits, 6);
        assert_eq!(stored.algorithm, ykoath::Algorithm::Sha1);
        assert!(!stored.touch);
    }

    #[test]
    fn register_sets_touch_and_path() {
        let iam = FakeIam::new();
        let mut card = FakeCard::default();
        let request = Request {
            user: "alice",
            device_name: "laptop",
            path: Some("/team/"),
            touch: true,
        };

        let registered = register(&iam, &mut card, &request, &|| STEP).unwrap();

        assert_eq!(
            registered.serial,
            "arn:aws:iam::123456789012:mfa/team/laptop"
        );
        assert_eq!(
            registered.credential_name,
            "aws/iam/123456789012:team/laptop"
        );
        assert!(card.credentials["aws/iam/123456789012:team/laptop"].touch);
        assert_eq!(iam.calls()[0], "create laptop /team/");
    }

    #[test]
    fn enable_failure_undoes_card_and_device() {
        let iam = FakeIam::new().failing("enable");
        let mut card = FakeCard::default();

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(card.credentials.is_empty(), "the card credential was left");
        assert!(iam.devices.borrow().is_empty(), "the device was left");
        assert!(error.contains("enable is broken"), "{error}");
        assert!(
            error.contains(&format!("removed the OATH credential '{NAME}'")),
            "{error}"
        );
        assert!(
            error.contains(&format!("deleted the virtual MFA device {SERIAL}")),
            "{error}"
        );
        assert!(!error.contains("Not undone"), "{error}");
    }

    #[test]
    fn put_failure_deletes_device_only() {
        let iam = FakeIam::new();
        let mut card = FakeCard::failing("put");

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(iam.devices.borrow().is_empty());
        assert!(!card.calls.iter().any(|call| call.starts_with("delete")));
        assert!(
            error.contains("storing the secret on the YubiKey failed"),
            "{error}"
        );
        assert!(error.contains("deleted the virtual MFA device"), "{error}");
        assert!(!error.contains("removed the OATH credential"), "{error}");
    }

    #[test]
    fn code_failure_undoes_card_and_device() {
        let iam = FakeIam::new();
        let mut card = FakeCard::failing("code");

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(card.credentials.is_empty());
        assert!(iam.devices.borrow().is_empty());
        assert!(!iam.calls().iter().any(|call| call.starts_with("enable")));
        assert!(error.contains("computing the first code"), "{error}");
    }

    #[test]
    fn invalid_seed_deletes_device() {
        let mut iam = FakeIam::new();
        iam.seed = "not base32!".to_owned();
        let mut card = FakeCard::default();

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(iam.devices.borrow().is_empty());
        assert!(card.calls.is_empty(), "the card was used: {:?}", card.calls);
        assert!(error.contains("not valid base32"), "{error}");
    }

    #[test]
    fn create_failure_needs_no_undo() {
        let iam = FakeIam::new().failing("create");
        let mut card = FakeCard::default();

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert_eq!(iam.calls(), vec!["create alice /"]);
        assert!(card.calls.is_empty());
        assert!(!error.contains("Undone"), "{error}");
    }

    #[test]
    fn failed_undo_says_how_to_clean_up() {
        let iam = FakeIam::new().failing("enable").failing("delete");
        let mut card = FakeCard::default();

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(error.contains("Not undone"), "{error}");
        assert!(
            error.contains(&format!("awsu unregister alice --mfa {SERIAL}")),
            "{error}"
        );
        assert!(error.contains("removed the OATH credential"), "{error}");
    }

    #[test]
    fn undo_deactivates_device_enabled_despite_error() {
        // EnableMFADevice took effect, but its response was lost.
        struct LostAnswer(FakeIam);
        impl MfaDevices for LostAnswer {
            fn create_virtual_mfa_device(
                &self,
                name: &str,
                path: Option<&str>,
            ) -> Result<NewDevice, Error> {
                self.0.create_virtual_mfa_device(name, path)
            }
            fn enable_mfa_device(
                &self,
                user: &str,
                serial: &str,
                codes: [&str; 2],
            ) -> Result<(), Error> {
                self.0.enable_mfa_device(user, serial, codes)?;
                Err(Error::Other("timed out".into()))
            }
            fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, Error> {
                self.0.list_mfa_devices(user)
            }
            fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), Error> {
                self.0.deactivate_mfa_device(user, serial)
            }
            fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), Error> {
                self.0.delete_virtual_mfa_device(serial)
            }
        }
        let iam = LostAnswer(FakeIam::new());
        let mut card = FakeCard::default();

        let error = register(&iam, &mut card, &alice(), &|| STEP)
            .unwrap_err()
            .to_string();

        assert!(iam.0.devices.borrow().is_empty(), "the device was left");
        assert!(error.contains("deactivated"), "{error}");
        assert!(!error.contains("Not undone"), "{error}");
    }

    #[test]
    fn long_name_is_rejected_before_create() {
        let long = "d".repeat(44);
        let request = Request {
            device_name: &long,
            ..alice()
        };
        assert!(check_name_fits(&request).is_err());

        let fits = "d".repeat(43);
        let request = Request {
            device_name: &fits,
            ..alice()
        };
        assert!(check_name_fits(&request).is_ok());

        let request = Request {
            device_name: &fits,
            path: Some("/x/"),
            ..alice()
        };
        assert!(check_name_fits(&request).is_err());
    }

    #[test]
    fn seed_is_normalized() {
        assert_eq!(normalize_seed("jbsw y3dp\n===="), "JBSWY3DP");
        assert_eq!(decode_seed("JBSWY3DP", SERIAL).unwrap(), b"Hello".to_vec());
        assert!(decode_seed("", SERIAL).is_err());
        assert!(decode_seed("JBSWY3D1", SERIAL).is_err());
    }

    #[test]
    fn account_comes_from_serial() {
        assert_eq!(account_of(SERIAL), Some("123456789012"));
        assert_eq!(account_of("GAHT12345678"), None);
    }
}
