//! `otpauth://` key URIs for authenticator apps, drawn as QR codes on a terminal.

use qrcode::{Color, EcLevel, QrCode};

use crate::commands::url_encode;
use crate::error::Error;

/// Light modules around the code. The QR standard requires 4, but 2 keep the
/// code of a usual key URI (a 64-character seed) within 24 terminal lines.
// NOTE: rqrr and zxing-cpp decode the code with this margin; phone scanners were not tried.
const QUIET_ZONE: usize = 2;

/// Builds the key URI of a TOTP secret (SHA-1, 6 digits, 30 s, the defaults
/// of the format) as `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`,
/// with the issuer and account percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}",
        url_encode(issuer),
        url_encode(account),
        url_encode(secret_base32),
        url_encode(issuer)
    )
}

/// Renders `data` as a QR code for a terminal: each character cell holds two
/// modules as an upper half block, with explicit ANSI colors (black on white),
/// so that the code scans on dark and light terminal themes alike.
pub fn render(data: &str) -> Result<String, Error> {
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).map_err(|error| {
            Error::Other(format!(
                "could not draw the QR code ({error}); use the secret printed below it"
            ))
        })?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let is_dark = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= width + QUIET_ZONE || y >= width + QUIET_ZONE {
            return false;
        }
        colors[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Dark
    };

    let mut output = String::new();
    for y in (0..size).step_by(2) {
        let mut current: Option<(bool, bool)> = None;
        for x in 0..size {
            let cell = (is_dark(x, y), is_dark(x, y + 1));
            if current != Some(cell) {
                output.push_str(&format!(
                    "\x1b[{};{}m",
                    if cell.0 { 30 } else { 97 },
                    if cell.1 { 40 } else { 107 }
                ));
                current = Some(cell);
            }
            output.push('▀');
        }
        output.push_str("\x1b[0m\n");
    }
    Ok(output)
}

/// Groups base32 text in fours for reading and typing, e.g. `ABCD EFGH IJ`.
pub fn group_secret(secret_base32: &str) -> String {
    secret_base32
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    /// Reads a rendering back into module rows: (top, bottom) per cell,
    /// following the color codes.
    fn parse_rendering(text: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let mut top = Vec::new();
            let mut bottom = Vec::new();
            let (mut foreground_dark, mut background_dark) = (false, false);
            let mut characters = line.chars().peekable();
            while let Some(character) = characters.next() {
                if character == '\x1b' {
                    let mut sequence = String::new();
                    for next in characters.by_ref() {
                        if next == 'm' {
                            break;
                        }
                        sequence.push(next);
                    }
                    for code in sequence.trim_start_matches('[').split(';') {
                        match code {
                            "30" => foreground_dark = true,
                            "97" => foreground_dark = false,
                            "40" => background_dark = true,
                            "107" => background_dark = false,
                            _ => {}
                        }
                    }
                } else {
                    assert_eq!(character, '▀', "unexpected character in the rendering");
                    top.push(foreground_dark);
                    bottom.push(background_dark);
                }
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    fn decode(rows: &[Vec<bool>]) -> String {
        const SCALE: usize = 4;
        // A white margin beyond the drawn quiet zone, as a screen around the code would give.
        const MARGIN: usize = 8;
        let (width, height) = (rows[0].len(), rows.len());
        let (pixels_wide, pixels_high) =
            ((width + 2 * MARGIN) * SCALE, (height + 2 * MARGIN) * SCALE);
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(pixels_wide, pixels_high, |x, y| {
                let (column, row) = (x / SCALE, y / SCALE);
                let inside = (MARGIN..MARGIN + width).contains(&column)
                    && (MARGIN..MARGIN + height).contains(&row);
                if inside && rows[row - MARGIN][column - MARGIN] {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "expected one QR code in the rendering");
        let (_meta, content) = grids[0].decode().expect("the QR code decodes");
        content
    }

    #[test]
    fn uri_has_expected_form() {
        assert_eq!(
            otpauth_uri("Amazon", "alice@123456789012", "ABCDEFGH"),
            "otpauth://totp/Amazon:alice%40123456789012?secret=ABCDEFGH&issuer=Amazon"
        );
    }

    #[test]
    fn uri_encodes_issuer_and_account() {
        assert_eq!(
            otpauth_uri("ACME Co & Sons", "team/bob:x@123456789012", "ABC"),
            "otpauth://totp/ACME%20Co%20%26%20Sons:team%2Fbob%3Ax%40123456789012\
             ?secret=ABC&issuer=ACME%20Co%20%26%20Sons"
        );
    }

    #[test]
    fn rendering_decodes_to_uri() {
        let uri = otpauth_uri("Amazon", "alice@123456789012", SECRET);
        let text = render(&uri).unwrap();

        let rows = parse_rendering(&text);
        assert!(
            rows.len() <= 2 * 24,
            "{} rows do not fit 24 lines",
            rows.len()
        );
        assert_eq!(decode(&rows), uri);
    }

    #[test]
    fn rendering_is_square_with_quiet_zone() {
        let text = render("otpauth://totp/A:b?secret=ABC&issuer=A").unwrap();
        let rows = parse_rendering(&text);
        let width = rows[0].len();
        assert!(rows.iter().all(|row| row.len() == width));
        assert!(rows.len() == width || rows.len() == width + 1);
        for ring in 0..QUIET_ZONE {
            assert!(
                rows[ring].iter().all(|dark| !dark),
                "row {ring} is not light"
            );
            assert!(
                rows.iter().all(|row| !row[ring]),
                "column {ring} is not light"
            );
            assert!(rows.iter().all(|row| !row[width - 1 - ring]));
        }
    }

    #[test]
    fn secret_is_grouped_in_fours() {
        assert_eq!(group_secret("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(group_secret("ABCD"), "ABCD");
        assert_eq!(group_secret(""), "");
    }
}
