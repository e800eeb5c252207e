//! [`Transport`] over PC/SC, through the `pcsc` crate and pcscd (libpcsclite).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode};

use crate::find::Connector;
use crate::transport::Transport;
use crate::Error;

/// How long to retry a reader that another program has locked before giving up.
pub const BUSY_RETRY_TOTAL: Duration = Duration::from_secs(3);
const BUSY_RETRY_FIRST_DELAY: Duration = Duration::from_millis(50);
const BUSY_RETRY_MAX_DELAY: Duration = Duration::from_millis(500);

/// A card connected in shared mode, inside a PC/SC transaction that lasts
/// until the transport is dropped, so that no other program's APDUs can
/// come between the APDUs of one session.
///
/// Dropping it disconnects with `SCARD_LEAVE_CARD`, which also ends the
/// transaction, and releases the context when this was its last user.
pub struct PcscTransport {
    card: Option<Card>,
    reader: String,
}

impl PcscTransport {
    /// Connects to the card in `reader`, retrying for [`BUSY_RETRY_TOTAL`]
    /// while another program has it locked, and begins a transaction.
    pub fn connect(context: &Context, reader: &str) -> Result<Self, Error> {
        Self::connect_with_retry(context, reader, BUSY_RETRY_TOTAL)
    }

    /// Like [`connect`](Self::connect) with a custom retry time for a busy reader.
    pub fn connect_with_retry(
        context: &Context,
        reader: &str,
        busy_retry_total: Duration,
    ) -> Result<Self, Error> {
        let reader_name = CString::new(reader).map_err(|_| {
            Error::InvalidArgument(format!("reader name {reader:?} contains a NUL byte"))
        })?;

        let started = Instant::now();
        let mut delay = BUSY_RETRY_FIRST_DELAY;
        let mut card = loop {
            match context.connect(&reader_name, ShareMode::Shared, Protocols::ANY) {
                Ok(card) => break card,
                Err(pcsc::Error::SharingViolation)
                    if started.elapsed() + delay <= busy_retry_total =>
                {
                    tracing::debug!(
                        reader,
                        delay_ms = delay.as_millis() as u64,
                        "reader is busy, retrying"
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(BUSY_RETRY_MAX_DELAY);
                }
                Err(error) => return Err(map_error("connect", reader, error)),
            }
        };

        begin_transaction(&mut card, reader)?;
        tracing::debug!(reader, "connected to the card");
        Ok(PcscTransport {
            card: Some(card),
            reader: reader.to_owned(),
        })
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }
}

/// Begins a transaction that stays open until the card is disconnected.
fn begin_transaction(card: &mut Card, reader: &str) -> Result<(), Error> {
    let result = match card.transaction2() {
        Ok(transaction) => {
            // The Transaction value only borrows the card, so forgetting it
            // leaks nothing; disconnecting in Drop ends the transaction.
            std::mem::forget(transaction);
            return Ok(());
        }
        Err((card, pcsc::Error::ResetCard)) => {
            // Another program reset the card since we connected: reconnect once.
            card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
                .map_err(|error| map_error("reconnect", reader, error))?;
            card.transaction2().map_err(|(_, error)| error)
        }
        Err((_, error)) => Err(error),
    };
    match result {
        Ok(transaction) => {
            std::mem::forget(transaction);
            Ok(())
        }
        Err(error) => Err(map_error("begin transaction", reader, error)),
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        let card = self.card.as_ref().ok_or_else(|| Error::NoCard {
            reader: self.reader.clone(),
        })?;
        let mut buffer = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let response = card
            .transmit(command, &mut buffer)
            .map_err(|error| map_error("transmit", &self.reader, error))?;
        Ok(response.to_vec())
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            if let Err((card, error)) = card.disconnect(Disposition::LeaveCard) {
                tracing::debug!(reader = %self.reader, %error, "disconnect failed, resetting the card instead");
                // Dropping a pcsc::Card disconnects with SCARD_RESET_CARD.
                drop(card);
            }
        }
    }
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

/// Establishes a PC/SC context in user scope.
pub fn establish_context() -> Result<Context, Error> {
    Context::establish(Scope::User).map_err(|error| map_error("establish context", "", error))
}

/// Lists reader names. No reader is [`Error::NoReaders`].
pub fn list_readers(context: &Context) -> Result<Vec<String>, Error> {
    let names = context
        .list_readers_owned()
        .map_err(|error| map_error("list readers", "", error))?;
    if names.is_empty() {
        return Err(Error::NoReaders);
    }
    Ok(names
        .into_iter()
        .map(|name| name.to_string_lossy().into_owned())
        .collect())
}

/// A [`Connector`] over one PC/SC context.
pub struct PcscConnector {
    context: Context,
}

impl PcscConnector {
    pub fn establish() -> Result<Self, Error> {
        Ok(PcscConnector {
            context: establish_context()?,
        })
    }

    pub fn context(&self) -> &Context {
        &self.context
    }
}

impl Connector for PcscConnector {
    type Transport = PcscTransport;

    fn readers(&mut self) -> Result<Vec<String>, Error> {
        list_readers(&self.context)
    }

    fn connect(&mut self, reader: &str) -> Result<PcscTransport, Error> {
        PcscTransport::connect(&self.context, reader)
    }
}

/// Maps the PC/SC errors a user can fix to their own variants.
fn map_error(operation: &'static str, reader: &str, error: pcsc::Error) -> Error {
    match error {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => Error::PcscdNotRunning,
        pcsc::Error::NoReadersAvailable => Error::NoReaders,
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => Error::NoCard {
            reader: reader.to_owned(),
        },
        pcsc::Error::SharingViolation => Error::CardBusy {
            reader: reader.to_owned(),
        },
        source => Error::Pcsc {
            operation,
            reader: reader.to_owned(),
            source,
        },
    }
}
