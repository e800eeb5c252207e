//! Prompts and notices for the person at the terminal. They go to the
//! controlling terminal, or to stderr when there is none, and never to
//! stdout, which belongs to `eval` in export mode.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};

/// Writes one line to the terminal (or stderr).
pub fn notice(message: &str) {
    let line = format!("{message}\n");
    if let Ok(mut tty) = OpenOptions::new().write(true).open("/dev/tty") {
        if tty.write_all(line.as_bytes()).is_ok() {
            return;
        }
    }
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Writes a prompt without a line break to the terminal (or stderr).
fn prompt(message: &str) {
    if let Ok(mut tty) = OpenOptions::new().write(true).open("/dev/tty") {
        if tty
            .write_all(message.as_bytes())
            .and_then(|()| tty.flush())
            .is_ok()
        {
            return;
        }
    }
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(message.as_bytes());
    let _ = stderr.flush();
}

/// Reads one line: from stdin when stdin is not a terminal (so that codes can
/// be piped in), else from the terminal. Stdin is read one byte at a time, so
/// the rest of it stays for the program that awsu runs next. `None` means end
/// of input.
fn read_line() -> std::io::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        if let Ok(tty) = OpenOptions::new().read(true).open("/dev/tty") {
            return read_line_from(tty);
        }
    }
    read_line_from(stdin.lock())
}

/// Writes `message` as a prompt and reads one line with [`read_line`].
/// Nothing echoes a line break after a line from a pipe, or after end of
/// input, so one is written then, and later output starts on a line of its own.
pub fn ask(message: &str) -> std::io::Result<Option<String>> {
    prompt(message);
    let line = read_line()?;
    if line.is_none() || !std::io::stdin().is_terminal() {
        notice("");
    }
    Ok(line)
}

/// Reads a secret typed at the terminal with echo turned off, after a prompt.
/// Without a terminal the line is read from stdin.
pub fn read_secret(message: &str) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;

    let Ok(tty) = OpenOptions::new().read(true).write(true).open("/dev/tty") else {
        return ask(message)?.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into());
    };
    prompt(message);

    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data, filled by tcgetattr before it is used.
    let mut original: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = unsafe { libc::tcgetattr(fd, &mut original) } == 0;
    if echo_off {
        let mut silent = original;
        silent.c_lflag &= !libc::ECHO;
        silent.c_lflag |= libc::ECHONL;
        // SAFETY: fd is an open terminal and `silent` a valid termios.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &silent) };
    }
    let line = read_line_from(&tty);
    if echo_off {
        // SAFETY: restores the settings read above on the same terminal.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &original) };
    }
    line?.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

fn read_line_from(mut reader: impl Read) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) if bytes.is_empty() => return Ok(None),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => bytes.push(byte[0]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    let line = String::from_utf8_lossy(&bytes);
    Ok(Some(line.trim_end_matches('\r').to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_stops_at_newline() {
        let mut input: &[u8] = b"123456\r\nrest for the program";
        assert_eq!(
            read_line_from(&mut input).unwrap().as_deref(),
            Some("123456")
        );
        assert_eq!(input, b"rest for the program");
    }

    #[test]
    fn read_line_reports_end_of_input() {
        assert_eq!(read_line_from(&b""[..]).unwrap(), None);
        assert_eq!(read_line_from(&b"12"[..]).unwrap().as_deref(), Some("12"));
    }
}
