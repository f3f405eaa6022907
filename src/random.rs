//! Every random string the bot makes — references, activation codes, tokens — from one generator:
//! the operating system's.

use rand::RngCore;

/// Easy to read aloud and to type back: capitals and digits without 0/O and 1/I. Exactly 32, so
/// each symbol is 5 bits of one random byte, with no bias.
pub const SYMBOLS: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// `len` random [`SYMBOLS`]: 5 bits each.
pub fn symbols(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(SYMBOLS[usize::from(byte & 31)]))
        .collect()
}

/// `bytes` random bytes in lower-case hex.
pub fn hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_readable_and_vary() {
        let drawn = symbols(64);
        assert_eq!(drawn.len(), 64);
        assert!(drawn.bytes().all(|b| SYMBOLS.contains(&b)), "{drawn}");
        assert!(!drawn.contains(['0', 'O', '1', 'I']), "{drawn}");
        assert_ne!(symbols(24), symbols(24));
        assert_eq!(hex(8).len(), 16);
        assert!(hex(8).bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
