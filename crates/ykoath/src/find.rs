//! Finding the YubiKey that stores a credential among all readers.

use crate::apdu::StatusWord;
use crate::error::{Contents, ReaderContents};
use crate::oath::OathSession;
use crate::transport::Transport;
use crate::Error;

/// A source of readers and connections to their cards.
pub trait Connector {
    type Transport: Transport;

    /// Lists reader names; no reader at all is [`Error::NoReaders`].
    fn readers(&mut self) -> Result<Vec<String>, Error>;

    fn connect(&mut self, reader: &str) -> Result<Self::Transport, Error>;
}

/// A password-protected applet that must be unlocked before it can be listed.
#[derive(Debug, Clone, Copy)]
pub struct LockedApplet<'a> {
    pub reader: &'a str,
    /// The device id that ykman shows, for remembering keys per device.
    pub device_id: &'a str,
    /// The salt for [`derive_key`](crate::derive_key).
    pub salt: &'a [u8],
}

/// Opens the OATH applet that stores credential `name`.
///
/// Every reader whose name contains `reader_filter` (all readers without a
/// filter) and whose card selects the OATH applet is a candidate. With one
/// candidate the session is returned without listing, so that a code costs
/// two APDUs (SELECT and CALCULATE). A missing credential then shows up as
/// [`Error::NoSuchCredential`] from CALCULATE. With several, each is listed
/// and the one whose list contains `name` exactly is returned.
///
/// `unlock` is called for a password-protected candidate that must be
/// listed; it returns the access key, or `None` to skip that applet. The
/// returned session may still need validation (single candidate), so check
/// [`OathSession::needs_validation`] before calculating.
pub fn find_credential<C: Connector>(
    connector: &mut C,
    reader_filter: Option<&str>,
    name: &str,
    mut unlock: impl FnMut(&LockedApplet<'_>) -> Result<Option<[u8; 16]>, Error>,
) -> Result<(String, OathSession<C::Transport>), Error> {
    let readers = connector.readers()?;
    if readers.is_empty() {
        return Err(Error::NoReaders);
    }

    let mut seen = Vec::new();
    let mut errors = Vec::new();
    let mut candidates = Vec::new();
    for reader in readers {
        if reader_filter.is_some_and(|filter| !reader.contains(filter)) {
            seen.push(ReaderContents {
                reader,
                contents: Contents::NotSearched,
            });
            continue;
        }
        match connector.connect(&reader).and_then(OathSession::select) {
            Ok(session) => candidates.push((reader, session)),
            Err(Error::PcscdNotRunning) => return Err(Error::PcscdNotRunning),
            Err(error) => {
                tracing::debug!(%reader, %error, "reader is not a candidate");
                seen.push(ReaderContents {
                    reader,
                    contents: Contents::Unavailable(describe_unavailable(&error)),
                });
                errors.push(error);
            }
        }
    }

    if candidates.is_empty() {
        if let Some(filter) = reader_filter {
            if errors.is_empty() {
                return Err(Error::NoMatchingReader {
                    filter: filter.to_owned(),
                    readers: seen,
                });
            }
        }
        // One reader that failed for a reason the user can fix: report that reason.
        if let [error] = errors.as_slice() {
            if matches!(error, Error::CardBusy { .. } | Error::NoCard { .. }) {
                return Err(errors.remove(0));
            }
        }
        return Err(Error::NoOathApplet { readers: seen });
    }

    if candidates.len() == 1 {
        let (reader, session) = candidates.remove(0);
        tracing::debug!(%reader, "using the only OATH applet found");
        return Ok((reader, session));
    }

    let mut holders = Vec::new();
    for (reader, mut session) in candidates {
        if session.needs_validation() {
            let device_id = session.device_id();
            let locked = LockedApplet {
                reader: &reader,
                device_id: &device_id,
                salt: session.salt(),
            };
            match unlock(&locked)? {
                Some(key) => session.validate(&key)?,
                None => {
                    seen.push(ReaderContents {
                        reader,
                        contents: Contents::Locked,
                    });
                    continue;
                }
            }
        }
        match session.list() {
            Ok(credentials) => {
                let names: Vec<String> = credentials.into_iter().map(|info| info.name).collect();
                let holds = names.iter().any(|candidate| candidate == name);
                seen.push(ReaderContents {
                    reader: reader.clone(),
                    contents: Contents::Credentials(names),
                });
                if holds {
                    holders.push((reader, session));
                }
            }
            Err(error) => {
                tracing::debug!(%reader, %error, "LIST failed");
                seen.push(ReaderContents {
                    reader,
                    contents: Contents::Unavailable(describe_unavailable(&error)),
                });
            }
        }
    }

    match holders.len() {
        0 => Err(Error::CredentialNotFound {
            name: name.to_owned(),
            readers: seen,
        }),
        1 => Ok(holders.remove(0)),
        _ => Err(Error::AmbiguousCredential {
            name: name.to_owned(),
            readers: seen,
        }),
    }
}

/// Describes why a reader is not a candidate, for an error's reader list.
fn describe_unavailable(error: &Error) -> String {
    match error {
        Error::Status { sw, .. }
            if [
                StatusWord::FILE_NOT_FOUND,
                StatusWord::INS_NOT_SUPPORTED,
                StatusWord::CLA_NOT_SUPPORTED,
            ]
            .contains(sw) =>
        {
            format!("no OATH applet, SELECT returned {sw}")
        }
        Error::NoCard { .. } => "no card".to_owned(),
        Error::CardBusy { .. } => "in use by another program".to_owned(),
        other => other.to_string(),
    }
}

/// Opens the OATH applet that stores `name` over PC/SC, skipping
/// password-protected applets when several must be listed. See [`find_credential`].
#[cfg(feature = "pcsc")]
pub fn open_for_credential(
    reader_filter: Option<&str>,
    name: &str,
) -> Result<(String, OathSession<crate::pcsc::PcscTransport>), Error> {
    open_for_credential_with(reader_filter, name, |_| Ok(None))
}

/// Like [`open_for_credential`], with `unlock` returning the access key of
/// a password-protected applet. See [`find_credential`].
#[cfg(feature = "pcsc")]
pub fn open_for_credential_with(
    reader_filter: Option<&str>,
    name: &str,
    unlock: impl FnMut(&LockedApplet<'_>) -> Result<Option<[u8; 16]>, Error>,
) -> Result<(String, OathSession<crate::pcsc::PcscTransport>), Error> {
    let mut connector = crate::pcsc::PcscConnector::establish()?;
    find_credential(&mut connector, reader_filter, name, unlock)
}
