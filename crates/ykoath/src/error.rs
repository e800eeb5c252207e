//! The one error type of the crate.

use std::fmt;

use crate::apdu::StatusWord;

/// Errors from the card, the protocol or the PC/SC layer.
///
/// Each message states what failed and what the user can do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "no OATH credential named {name:?} on the YubiKey; \
         list the credentials with `ykman oath accounts list` and check the name"
    )]
    NoSuchCredential { name: String },

    #[error(
        "the YubiKey was not touched in time; \
         touch the YubiKey when it blinks, within 15 seconds"
    )]
    TouchTimeout,

    #[error(
        "the YubiKey's OATH applet is protected by a password; \
         validate with the password before using it"
    )]
    AuthRequired,

    #[error("wrong OATH password for the YubiKey; try again with the right password")]
    WrongPassword,

    #[error(
        "malformed response to {command}: {reason}; \
         check that the card is a YubiKey with the OATH applet, or re-insert it"
    )]
    Malformed {
        command: &'static str,
        reason: String,
    },

    #[error("the YubiKey has no space left for another OATH credential; delete one first")]
    NoSpace,

    #[error("{command} failed with status word {sw}; re-insert the YubiKey and try again")]
    Status {
        command: &'static str,
        sw: StatusWord,
    },

    #[error("invalid OATH credential {name:?}: {reason}")]
    InvalidCredential { name: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A failure of a transport that is not PC/SC (tests, other readers).
    #[error("sending an APDU to the card failed: {0}")]
    Transport(String),

    #[error(
        "the PC/SC service (pcscd) is not running; \
         start it, for example with `systemctl start pcscd.socket`"
    )]
    PcscdNotRunning,

    #[error("no smart card reader found; plug in the YubiKey and try again")]
    NoReaders,

    #[error("no card in reader {reader:?}; re-insert the YubiKey and try again")]
    NoCard { reader: String },

    #[error(
        "reader {reader:?} is in use by another program; if it is gpg's scdaemon, \
         stop it with `gpgconf --kill scdaemon` and try again"
    )]
    CardBusy { reader: String },

    #[cfg(feature = "pcsc")]
    #[error("PC/SC {operation} failed on reader {reader:?}: {source}")]
    Pcsc {
        operation: &'static str,
        reader: String,
        #[source]
        source: pcsc::Error,
    },

    #[error(
        "no reader name contains {filter:?}; readers seen: {}",
        ReaderList(readers)
    )]
    NoMatchingReader {
        filter: String,
        readers: Vec<ReaderContents>,
    },

    #[error(
        "no YubiKey with the OATH applet found; readers seen: {}",
        ReaderList(readers)
    )]
    NoOathApplet { readers: Vec<ReaderContents> },

    #[error(
        "no YubiKey holds the OATH credential {name:?}; readers seen: {}",
        ReaderList(readers)
    )]
    CredentialNotFound {
        name: String,
        readers: Vec<ReaderContents>,
    },

    #[error(
        "several YubiKeys hold the OATH credential {name:?}; \
         choose one with a reader filter. Readers seen: {}",
        ReaderList(readers)
    )]
    AmbiguousCredential {
        name: String,
        readers: Vec<ReaderContents>,
    },
}

/// The contents found in one reader while searching for a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderContents {
    pub reader: String,
    pub contents: Contents,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Names of the OATH credentials on the card.
    Credentials(Vec<String>),
    /// The OATH applet is password protected and no key was given for it.
    Locked,
    /// Not searched, because the reader name does not match the filter or
    /// because a single candidate was used without listing.
    NotSearched,
    /// The card did not select the OATH applet, or could not be reached.
    Unavailable(String),
}

impl fmt::Display for ReaderContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (", self.reader)?;
        match &self.contents {
            Contents::Credentials(names) if names.is_empty() => write!(f, "no credentials")?,
            Contents::Credentials(names) => {
                let quoted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
                write!(f, "credentials {}", quoted.join(", "))?;
            }
            Contents::Locked => write!(f, "password protected, not listed")?,
            Contents::NotSearched => write!(f, "not searched")?,
            Contents::Unavailable(reason) => write!(f, "{reason}")?,
        }
        write!(f, ")")
    }
}

/// Formats a list of readers for an error message.
struct ReaderList<'a>(&'a [ReaderContents]);

impl fmt::Display for ReaderList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        for (index, reader) in self.0.iter().enumerate() {
            if index > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{reader}")?;
        }
        Ok(())
    }
}

impl Error {
    pub(crate) fn malformed(command: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            command,
            reason: reason.into(),
        }
    }
}
