//! Two byte helpers shared by the cache, the credential server and import: lowercase hex
//! into a buffer that is zeroized on drop, and a comparison whose time does not depend on
//! where the bytes differ.

use zeroize::Zeroizing;

/// `bytes` as lowercase hex, written straight into a zeroized buffer of the right size (no
/// reallocation leaves a copy behind: the text may be a secret token).
pub fn hex(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

/// Equal bytes, in time that does not depend on where they differ (MACs, tokens).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_same() {
        assert_eq!(*hex(&[0x00, 0x9f, 0xff]), "009fff");
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
