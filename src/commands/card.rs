//! The OATH applet operations that register and unregister need, behind a
//! trait so that their undo logic can be tested without a card.

use ykoath::find::Connector;
use ykoath::pcsc::PcscConnector;
use ykoath::{Contents, Credential, OathSession, PcscTransport, ReaderContents, Transport};

use crate::error::Error;

/// An unlocked OATH applet.
pub trait Card {
    /// Lists the names of the credentials on the applet.
    fn credential_names(&mut self) -> Result<Vec<String>, Error>;

    /// Stores a credential, replacing one of the same name.
    fn put(&mut self, credential: &Credential) -> Result<(), Error>;

    /// Returns the TOTP code of credential `name` for time step `step`.
    fn code(&mut self, name: &str, step: u64) -> Result<String, Error>;

    /// Deletes credential `name`.
    fn delete(&mut self, name: &str) -> Result<(), Error>;
}

impl<T: Transport + Send> Card for OathSession<T> {
    fn credential_names(&mut self) -> Result<Vec<String>, Error> {
        Ok(self.list()?.into_iter().map(|info| info.name).collect())
    }

    fn put(&mut self, credential: &Credential) -> Result<(), Error> {
        OathSession::put(self, credential)?;
        Ok(())
    }

    fn code(&mut self, name: &str, step: u64) -> Result<String, Error> {
        let code = self.calculate_totp_with_notice(name, step, || {
            crate::terminal::notice("Touch your YubiKey...");
        })?;
        Ok(code.to_string())
    }

    fn delete(&mut self, name: &str) -> Result<(), Error> {
        OathSession::delete(self, name)?;
        Ok(())
    }
}

/// An OATH applet found in a reader, unlocked.
pub struct FoundApplet {
    pub reader: String,
    pub session: OathSession<PcscTransport>,
}

/// Opens the OATH applet of every reader whose name contains `reader_filter`
/// (every reader without a filter), unlocking password-protected ones.
/// Readers without a card or applet are skipped; finding none is an error.
pub fn open_applets(reader_filter: Option<&str>) -> Result<Vec<FoundApplet>, Error> {
    let mut connector = PcscConnector::establish()?;
    let mut seen = Vec::new();
    let mut applets = Vec::new();

    for reader in connector.readers()? {
        if reader_filter.is_some_and(|filter| !reader.contains(filter)) {
            seen.push(ReaderContents {
                reader,
                contents: Contents::NotSearched,
            });
            continue;
        }
        match connector.connect(&reader).and_then(OathSession::select) {
            Ok(mut session) => {
                crate::yubikey::unlock(&mut session, &reader)?;
                applets.push(FoundApplet { reader, session });
            }
            Err(ykoath::Error::PcscdNotRunning) => {
                return Err(ykoath::Error::PcscdNotRunning.into())
            }
            Err(error) => {
                tracing::debug!("reader '{reader}' has no usable OATH applet: {error}");
                seen.push(ReaderContents {
                    reader,
                    contents: Contents::Unavailable(error.to_string()),
                });
            }
        }
    }

    if applets.is_empty() {
        return Err(match reader_filter {
            Some(filter)
                if seen
                    .iter()
                    .all(|reader| reader.contents == Contents::NotSearched) =>
            {
                ykoath::Error::NoMatchingReader {
                    filter: filter.to_owned(),
                    readers: seen,
                }
            }
            _ => ykoath::Error::NoOathApplet { readers: seen },
        }
        .into());
    }
    Ok(applets)
}

/// Opens the one OATH applet to store a new credential on; several YubiKeys
/// need `--reader` to choose.
pub fn open_single_applet(reader_filter: Option<&str>) -> Result<FoundApplet, Error> {
    let mut applets = open_applets(reader_filter)?;
    if applets.len() > 1 {
        let readers: Vec<String> = applets
            .iter()
            .map(|applet| format!("'{}'", applet.reader))
            .collect();
        return Err(Error::Other(format!(
            "several YubiKeys found, in readers {}: choose one with --reader (a part of the reader's name)",
            readers.join(", ")
        )));
    }
    let applet = applets.remove(0);
    tracing::debug!("using the YubiKey in reader '{}'", applet.reader);
    Ok(applet)
}
