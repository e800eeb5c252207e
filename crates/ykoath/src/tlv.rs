//! BER-style TLV with one-byte tags, as the OATH applet uses them.
//!
//! A length is one byte up to 0x7F, `81 xx` up to 0xFF, or `82 xx xx` up to
//! 0xFFFF. Parsing never panics: short input, an unknown length form or a
//! length past the end is an [`Error::Malformed`].

use crate::Error;

/// One parsed TLV, borrowing its value from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Appends one TLV to `buffer`.
pub fn push(buffer: &mut Vec<u8>, tag: u8, value: &[u8]) -> Result<(), Error> {
    let length = value.len();
    buffer.push(tag);
    match length {
        0..=0x7F => buffer.push(length as u8),
        0x80..=0xFF => buffer.extend_from_slice(&[0x81, length as u8]),
        0x100..=0xFFFF => {
            buffer.push(0x82);
            buffer.extend_from_slice(&(length as u16).to_be_bytes());
        }
        _ => {
            return Err(Error::InvalidArgument(format!(
                "TLV value of {length} bytes for tag {tag:#04X} is longer than 65535 bytes"
            )))
        }
    }
    buffer.extend_from_slice(value);
    Ok(())
}

/// Encodes one TLV.
pub fn encode(tag: u8, value: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buffer = Vec::with_capacity(value.len() + 4);
    push(&mut buffer, tag, value)?;
    Ok(buffer)
}

/// Parses the first TLV of `data` and returns it with the bytes after it.
pub fn parse_one<'a>(command: &'static str, data: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), Error> {
    let truncated = |what: &str| Error::malformed(command, format!("TLV truncated in its {what}"));

    let (&tag, rest) = data.split_first().ok_or_else(|| truncated("tag"))?;
    let (&first, rest) = rest.split_first().ok_or_else(|| truncated("length"))?;
    let (length, rest) = match first {
        0x00..=0x7F => (usize::from(first), rest),
        0x81 => {
            let (&byte, rest) = rest.split_first().ok_or_else(|| truncated("length"))?;
            (usize::from(byte), rest)
        }
        0x82 => match rest {
            [high, low, rest @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), rest),
            _ => return Err(truncated("length")),
        },
        _ => {
            return Err(Error::malformed(
                command,
                format!("TLV with tag {tag:#04X} has an unsupported length byte {first:#04X}"),
            ))
        }
    };
    if length > rest.len() {
        return Err(Error::malformed(
            command,
            format!(
                "TLV with tag {tag:#04X} claims {length} bytes but only {} follow",
                rest.len()
            ),
        ));
    }
    let (value, rest) = rest.split_at(length);
    Ok((Tlv { tag, value }, rest))
}

/// Parses a sequence of TLVs that fills `data` exactly.
pub fn parse_all<'a>(command: &'static str, mut data: &'a [u8]) -> Result<Vec<Tlv<'a>>, Error> {
    let mut items = Vec::new();
    while !data.is_empty() {
        let (item, rest) = parse_one(command, data)?;
        items.push(item);
        data = rest;
    }
    Ok(items)
}

/// Parses `data` as exactly one TLV with the tag `expected` and returns its value.
pub fn expect_single<'a>(
    command: &'static str,
    data: &'a [u8],
    expected: u8,
) -> Result<&'a [u8], Error> {
    let (item, rest) = parse_one(command, data)?;
    if item.tag != expected {
        return Err(Error::malformed(
            command,
            format!("expected tag {expected:#04X}, found {:#04X}", item.tag),
        ));
    }
    if !rest.is_empty() {
        return Err(Error::malformed(
            command,
            format!(
                "{} unexpected bytes after the TLV with tag {expected:#04X}",
                rest.len()
            ),
        ));
    }
    Ok(item.value)
}
