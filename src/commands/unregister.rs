//! `awsu unregister USERNAME`: deactivate the user's virtual MFA device,
//! remove its credential from the YubiKey, and delete the device.
//!
//! The device is found by listing the user's MFA devices and matching their
//! serials to the credentials on the card (or named with `--mfa`), never by
//! rewriting the caller's own ARN, which names another user under roles and
//! IAM paths.

use crate::aws;
use crate::cli::{Cli, UnregisterArgs};
use crate::commands::card::{self, Card, FoundApplet};
use crate::error::Error;
use crate::iam::{Iam, MfaDevices};
use crate::profile::Profile;
use crate::yubikey::credential_name;

/// The device to remove and where it is.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub serial: String,
    /// Whether the device is assigned to the user, so it must be deactivated first.
    pub assigned: bool,
    /// Name of its credential on the card, if the card contains one.
    pub card_credential: Option<String>,
}

/// Runs `awsu unregister`.
pub fn run(cli: &Cli, args: &UnregisterArgs) -> Result<(), Error> {
    let user = args.username.as_str();
    let requested = cli.global.mfa_serial.as_deref();

    // `--mfa` names the device to remove here, so it is not the caller's serial.
    let profile = Profile::load(cli, None)?;
    let credentials = profile.credentials(cli)?;
    let context = aws::Context::new(profile.settings.clone())?;
    let iam = Iam::new(&context, &credentials, &cli.global.profile);

    let assigned = iam.list_mfa_devices(user)?;
    tracing::info!("user '{user}' has MFA devices: {assigned:?}");

    let mut applets = match card::open_applets(cli.global.reader.as_deref()) {
        Ok(applets) => applets,
        Err(error) if requested.is_some() => {
            tracing::warn!(
                "could not open the YubiKey ({error}); removing the device without touching the card"
            );
            Vec::new()
        }
        Err(error) => {
            return Err(Error::Other(format!(
                "could not open the YubiKey to find the device of user '{user}': {error}. \
                 Pass --mfa SERIAL to remove a device without the YubiKey"
            )))
        }
    };
    let mut names_per_applet = Vec::new();
    for applet in &mut applets {
        names_per_applet.push(applet.session.credential_names()?);
    }
    let card_names: Vec<String> = names_per_applet.iter().flatten().cloned().collect();

    let target = choose(user, &assigned, requested, &card_names)?;
    let card = match &target.card_credential {
        Some(name) => Some(holder(&mut applets, &names_per_applet, name)?),
        None => None,
    };
    let done = unregister(
        &iam,
        card.map(|applet| &mut applet.session as &mut dyn Card),
        user,
        &target,
    )?;

    crate::terminal::notice(&format!(
        "awsu: unregistered {} of user '{user}': {}",
        target.serial,
        done.join("; ")
    ));
    Ok(())
}

/// Returns the applet that contains credential `name`. Several are an
/// error, because only one of them can be the device's.
fn holder<'a>(
    applets: &'a mut [FoundApplet],
    names_per_applet: &[Vec<String>],
    name: &str,
) -> Result<&'a mut FoundApplet, Error> {
    let holders: Vec<usize> = names_per_applet
        .iter()
        .enumerate()
        .filter(|(_, names)| names.iter().any(|candidate| candidate == name))
        .map(|(index, _)| index)
        .collect();
    match holders.as_slice() {
        [index] => Ok(&mut applets[*index]),
        _ => {
            let readers: Vec<String> = holders
                .iter()
                .map(|index| format!("'{}'", applets[*index].reader))
                .collect();
            Err(Error::Other(format!(
                "several YubiKeys hold the credential '{name}', in readers {}: choose one with --reader",
                readers.join(", ")
            )))
        }
    }
}

/// Chooses the device: `requested` (from `--mfa`) if given, else the one
/// virtual device of the user whose credential is on the card.
pub fn choose(
    user: &str,
    assigned: &[String],
    requested: Option<&str>,
    card_names: &[String],
) -> Result<Target, Error> {
    let on_card = |serial: &str| -> Option<String> {
        credential_name(serial)
            .ok()
            .filter(|name| card_names.contains(name))
    };

    if let Some(serial) = requested {
        credential_name(serial)?;
        return Ok(Target {
            serial: serial.to_owned(),
            assigned: assigned.iter().any(|candidate| candidate == serial),
            card_credential: on_card(serial),
        });
    }

    let matching: Vec<&String> = assigned
        .iter()
        .filter(|serial| on_card(serial).is_some())
        .collect();
    match matching.as_slice() {
        [serial] => Ok(Target {
            serial: (*serial).clone(),
            assigned: true,
            card_credential: on_card(serial),
        }),
        [] if assigned.is_empty() => Err(Error::Other(format!(
            "user '{user}' has no MFA device assigned: pass --mfa SERIAL to delete an unassigned virtual MFA device"
        ))),
        [] => Err(Error::Other(format!(
            "none of the MFA devices of user '{user}' ({}) has a credential on the YubiKey: \
             pass --mfa SERIAL to choose one",
            assigned.join(", ")
        ))),
        several => Err(Error::Other(format!(
            "several MFA devices of user '{user}' have a credential on the YubiKey ({}): \
             pass --mfa SERIAL to choose one",
            several
                .iter()
                .map(|serial| serial.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Deactivates, removes from the card and deletes `target`, and returns what
/// was done. A failed deactivation stops before anything else is changed;
/// later failures are collected and reported together.
pub fn unregister(
    iam: &dyn MfaDevices,
    card: Option<&mut dyn Card>,
    user: &str,
    target: &Target,
) -> Result<Vec<String>, Error> {
    let serial = &target.serial;
    let mut done = Vec::new();
    let mut failed = Vec::new();

    if target.assigned {
        iam.deactivate_mfa_device(user, serial).map_err(|error| {
            Error::Other(format!(
                "deactivating {serial} for user '{user}' failed: {error}. Nothing was changed: \
                 the device stays assigned and its credential stays on the YubiKey"
            ))
        })?;
        done.push("deactivated it".to_owned());
    } else {
        tracing::warn!("{serial} is not assigned to user '{user}', so it is only deleted");
    }

    match (&target.card_credential, card) {
        (Some(name), Some(card)) => match card.delete(name) {
            Ok(()) => done.push(format!("removed the credential '{name}' from the YubiKey")),
            Err(error) => failed.push(format!(
                "removing the credential '{name}' from the YubiKey failed ({error}); \
                 remove it with `ykman oath accounts delete '{name}'`"
            )),
        },
        _ => tracing::warn!("no credential for {serial} found on the YubiKey, so none was removed"),
    }

    match iam.delete_virtual_mfa_device(serial) {
        Ok(()) => done.push("deleted the virtual MFA device".to_owned()),
        Err(error) => failed.push(format!("deleting the virtual MFA device failed ({error})")),
    }

    if failed.is_empty() {
        return Ok(done);
    }
    let mut message = format!(
        "unregistering {serial} of user '{user}' is incomplete: {}",
        failed.join("; ")
    );
    if !done.is_empty() {
        message.push_str(&format!(". Done: {}", done.join("; ")));
    }
    Err(Error::Other(message))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use ykoath::Credential;

    use super::*;
    use crate::iam::NewDevice;

    const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
    const OTHER: &str = "arn:aws:iam::123456789012:mfa/team/alice-phone";
    const NAME: &str = "aws/iam/123456789012:alice";

    #[derive(Default)]
    struct FakeIam {
        failing: HashSet<&'static str>,
        calls: RefCell<Vec<String>>,
    }

    impl FakeIam {
        fn failing(operation: &'static str) -> FakeIam {
            FakeIam {
                failing: HashSet::from([operation]),
                ..FakeIam::default()
            }
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
    }

    impl MfaDevices for FakeIam {
        fn create_virtual_mfa_device(&self, _: &str, _: Option<&str>) -> Result<NewDevice, Error> {
            unreachable!("unregister creates no device")
        }
        fn enable_mfa_device(&self, _: &str, _: &str, _: [&str; 2]) -> Result<(), Error> {
            unreachable!("unregister enables no device")
        }
        fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, Error> {
            self.call("list", user.to_owned())?;
            Ok(vec![SERIAL.to_owned()])
        }
        fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), Error> {
            self.call("deactivate", format!("{user} {serial}"))
        }
        fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), Error> {
            self.call("delete", serial.to_owned())
        }
    }

    #[derive(Default)]
    struct FakeCard {
        names: Vec<String>,
        fail_delete: bool,
    }

    impl Card for FakeCard {
        fn credential_names(&mut self) -> Result<Vec<String>, Error> {
            Ok(self.names.clone())
        }
        fn put(&mut self, _: &Credential) -> Result<(), Error> {
            unreachable!("unregister stores nothing")
        }
        fn code(&mut self, _: &str, _: u64) -> Result<String, Error> {
            unreachable!("unregister computes no code")
        }
        fn delete(&mut self, name: &str) -> Result<(), Error> {
            if self.fail_delete {
                return Err(ykoath::Error::Transport("card removed".into()).into());
            }
            self.names.retain(|candidate| candidate != name);
            Ok(())
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    #[test]
    fn choose_matches_card_credential() {
        let target = choose(
            "alice",
            &strings(&[OTHER, SERIAL]),
            None,
            &strings(&["GitHub:alice", NAME]),
        )
        .unwrap();
        assert_eq!(
            target,
            Target {
                serial: SERIAL.to_owned(),
                assigned: true,
                card_credential: Some(NAME.to_owned()),
            }
        );
    }

    #[test]
    fn choose_skips_non_virtual_devices() {
        let assigned = strings(&[
            "GAHT12345678",
            "arn:aws:iam::123456789012:u2f/user/alice/key",
            SERIAL,
        ]);
        let target = choose("alice", &assigned, None, &strings(&[NAME])).unwrap();
        assert_eq!(target.serial, SERIAL);
    }

    #[test]
    fn choose_without_match_lists_devices() {
        let error = choose("alice", &strings(&[SERIAL]), None, &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains(SERIAL), "{error}");
        assert!(error.contains("--mfa"), "{error}");

        let error = choose("alice", &[], None, &strings(&[NAME]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no MFA device assigned"), "{error}");
    }

    #[test]
    fn choose_rejects_ambiguity() {
        let names = strings(&[NAME, "aws/iam/123456789012:team/alice-phone"]);
        let error = choose("alice", &strings(&[SERIAL, OTHER]), None, &names)
            .unwrap_err()
            .to_string();
        assert!(error.contains("several"), "{error}");
    }

    #[test]
    fn choose_takes_requested_serial() {
        let target = choose("alice", &strings(&[SERIAL]), Some(OTHER), &strings(&[NAME])).unwrap();
        assert_eq!(
            target,
            Target {
                serial: OTHER.to_owned(),
                assigned: false,
                card_credential: None,
            }
        );
        assert!(choose("alice", &[], Some("GAHT12345678"), &[]).is_err());
    }

    #[test]
    fn unregister_runs_steps_in_order() {
        let iam = FakeIam::default();
        let mut card = FakeCard {
            names: strings(&[NAME]),
            ..FakeCard::default()
        };
        let target = choose("alice", &strings(&[SERIAL]), None, &card.names.clone()).unwrap();

        let done = unregister(&iam, Some(&mut card), "alice", &target).unwrap();

        assert_eq!(
            *iam.calls.borrow(),
            vec![
                format!("deactivate alice {SERIAL}"),
                format!("delete {SERIAL}")
            ]
        );
        assert!(card.names.is_empty());
        assert_eq!(done.len(), 3, "{done:?}");
    }

    #[test]
    fn failed_deactivation_changes_nothing() {
        let iam = FakeIam::failing("deactivate");
        let mut card = FakeCard {
            names: strings(&[NAME]),
            ..FakeCard::default()
        };
        let target = choose("alice", &strings(&[SERIAL]), None, &card.names.clone()).unwrap();

        let error = unregister(&iam, Some(&mut card), "alice", &target)
            .unwrap_err()
            .to_string();

        assert_eq!(
            *iam.calls.borrow(),
            vec![format!("deactivate alice {SERIAL}")]
        );
        assert_eq!(card.names, strings(&[NAME]));
        assert!(error.contains("deactivating"), "{error}");
        assert!(error.contains("Nothing was changed"), "{error}");
    }

    #[test]
    fn card_failure_still_deletes_device() {
        let iam = FakeIam::default();
        let mut card = FakeCard {
            names: strings(&[NAME]),
            fail_delete: true,
        };
        let target = choose("alice", &strings(&[SERIAL]), None, &card.names.clone()).unwrap();

        let error = unregister(&iam, Some(&mut card), "alice", &target)
            .unwrap_err()
            .to_string();

        assert!(iam.calls.borrow().contains(&format!("delete {SERIAL}")));
        assert!(error.contains("ykman oath accounts delete"), "{error}");
        assert!(error.contains("deleted the virtual MFA device"), "{error}");
    }

    #[test]
    fn unassigned_device_is_only_deleted() {
        let iam = FakeIam::default();
        let target = Target {
            serial: OTHER.to_owned(),
            assigned: false,
            card_credential: None,
        };

        unregister(&iam, None, "alice", &target).unwrap();

        assert_eq!(*iam.calls.borrow(), vec![format!("delete {OTHER}")]);
    }

    #[test]
    fn delete_failure_is_reported() {
        let iam = FakeIam::failing("delete");
        let target = Target {
            serial: SERIAL.to_owned(),
            assigned: true,
            card_credential: None,
        };

        let error = unregister(&iam, None, "alice", &target)
            .unwrap_err()
            .to_string();

        assert!(
            error.contains("deleting the virtual MFA device failed"),
            "{error}"
        );
        assert!(error.contains("deactivated it"), "{error}");
    }
}
