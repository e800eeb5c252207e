//! Sources of MFA one-time passwords, and the per-serial record of the last
//! time step used, because AWS accepts each code only once.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::cache::{Cache, CacheKey};
use crate::credentials::unix_seconds;
use crate::error::Error;

/// Length of a TOTP time step, as AWS virtual MFA devices use it.
pub const STEP_SECONDS: u64 = 30;

/// A source of one-time passwords for MFA serials.
pub trait OtpSource {
    /// Returns the 6-digit code of `serial` for the TOTP time step `step`.
    /// Sources that cannot choose the step (a person typing) return the current code.
    fn code(&mut self, serial: &str, step: u64) -> Result<String, Error>;

    /// Tells whether codes are computed (and so always right for their step),
    /// as opposed to typed, where a rejected code is more likely a typo.
    fn computes_codes(&self) -> bool {
        true
    }
}

/// Codes typed by hand at a prompt.
pub struct Manual;

impl OtpSource for Manual {
    fn computes_codes(&self) -> bool {
        false
    }

    fn code(&mut self, serial: &str, _step: u64) -> Result<String, Error> {
        let prompt = format!("Enter the one-time password for {serial}: ");
        let Some(line) = crate::terminal::ask(&prompt).map_err(Error::Prompt)? else {
            return Err(Error::CodeInputClosed {
                serial: serial.to_owned(),
            });
        };

        // Authenticator apps show codes as "123 456", with a space that is not part of the code.
        let code: String = line.trim().chars().filter(|c| *c != ' ').collect();
        if !is_valid_code(&code) {
            return Err(Error::InvalidCodeInput);
        }
        Ok(code)
    }
}

/// Checks that a code is exactly 6 ASCII digits.
pub fn is_valid_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|byte| byte.is_ascii_digit())
}

/// Returns the TOTP time step that contains `time`.
pub fn time_step(time: SystemTime) -> u64 {
    unix_seconds(time).max(0) as u64 / STEP_SECONDS
}

/// The last time step used per MFA serial, stored beside the cache and shared
/// by all awsu processes (also under `--no-cache`, which concerns credentials only).
pub struct StepLedger {
    dir: PathBuf,
    locks: Cache,
}

impl StepLedger {
    pub fn new(dir: PathBuf) -> Result<StepLedger, Error> {
        Ok(StepLedger {
            locks: Cache::new(dir.clone())?,
            dir,
        })
    }

    fn path(&self, serial: &str) -> PathBuf {
        let key = CacheKey::derive(&[("mfa_serial", serial)]);
        self.dir.join(format!("{}.step", key.as_str()))
    }

    /// Runs `use_code` with a fresh code for `serial`, holding the serial's
    /// lock. If the current step's code was already used, it first waits for
    /// the next step and prints a notice. The step is recorded as used after a
    /// success, and after AWS rejected a computed code.
    pub fn with_code<T>(
        &self,
        serial: &str,
        source: &mut dyn OtpSource,
        use_code: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let key = CacheKey::derive(&[("mfa_serial_lock", serial)]);
        let _lock = self.locks.lock(&key, &format!("MFA with {serial}"))?;

        let mut step = time_step(SystemTime::now());
        if let Some(last) = self.last_used(serial) {
            if last >= step {
                let next = last + 1;
                let wait = (next * STEP_SECONDS)
                    .saturating_sub(unix_seconds(SystemTime::now()).max(0) as u64);
                crate::terminal::notice(&format!(
                    "awsu: the one-time password for {serial} of this 30-second step was already used; \
                     waiting {wait}s for the next one"
                ));
                std::thread::sleep(Duration::from_secs(wait));
                step = next.max(time_step(SystemTime::now()));
            }
        }

        let code = source.code(serial, step)?;
        let result = use_code(&code);

        // A computed code that AWS rejected was most likely used already; a
        // typed one was more likely mistyped, so its step stays available.
        let rejected_computed =
            matches!(result, Err(Error::CodeRejected { .. })) && source.computes_codes();
        if result.is_ok() || rejected_computed {
            self.record(serial, step);
        }
        result
    }

    fn last_used(&self, serial: &str) -> Option<u64> {
        let text = fs::read_to_string(self.path(serial)).ok()?;
        text.trim().parse().ok()
    }

    /// Records `step` as used. A failure only costs a possible wait later, so
    /// it is logged, not raised.
    pub fn record(&self, serial: &str, step: u64) {
        let path = self.path(serial);
        let result = fs::create_dir_all(&self.dir).and_then(|()| {
            let temporary = path.with_extension(format!("step.{}.tmp", std::process::id()));
            let write = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temporary)
                .and_then(|mut file| {
                    std::io::Write::write_all(&mut file, step.to_string().as_bytes())
                });
            write.and_then(|()| fs::rename(&temporary, &path))
        });
        if let Err(error) = result {
            tracing::warn!(
                "could not record the used time step in {}: {error}",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted {
        steps: Vec<u64>,
    }

    impl OtpSource for Scripted {
        fn code(&mut self, _serial: &str, step: u64) -> Result<String, Error> {
            self.steps.push(step);
            Ok("123456".into())
        }
    }

    #[test]
    fn code_format_is_six_digits() {
        assert!(is_valid_code("012345"));
        assert!(!is_valid_code("12345"));
        assert!(!is_valid_code("1234567"));
        assert!(!is_valid_code("12345a"));
        assert!(!is_valid_code("１２３４５６"));
    }

    #[test]
    fn ledger_records_used_step() {
        let home = tempfile::tempdir().unwrap();
        let ledger = StepLedger::new(home.path().to_owned()).unwrap();
        let mut source = Scripted { steps: Vec::new() };
        let serial = "arn:aws:iam::123456789012:mfa/test";

        ledger.with_code(serial, &mut source, |_| Ok(())).unwrap();

        assert_eq!(ledger.last_used(serial), Some(source.steps[0]));
    }

    #[test]
    fn ledger_skips_used_step() {
        let home = tempfile::tempdir().unwrap();
        let ledger = StepLedger::new(home.path().to_owned()).unwrap();
        let serial = "arn:aws:iam::123456789012:mfa/test";
        let now = time_step(SystemTime::now());
        // Pretend the step before the current one was used: no wait is needed.
        ledger.record(serial, now - 1);
        let mut source = Scripted { steps: Vec::new() };

        ledger.with_code(serial, &mut source, |_| Ok(())).unwrap();

        assert!(source.steps[0] >= now);
    }

    #[test]
    fn ledger_ignores_failed_calls() {
        let home = tempfile::tempdir().unwrap();
        let ledger = StepLedger::new(home.path().to_owned()).unwrap();
        let serial = "arn:aws:iam::123456789012:mfa/test";
        let mut source = Scripted { steps: Vec::new() };

        let result: Result<(), Error> =
            ledger.with_code(serial, &mut source, |_| Err(Error::Other("offline".into())));

        assert!(result.is_err());
        assert_eq!(ledger.last_used(serial), None);
    }
}
