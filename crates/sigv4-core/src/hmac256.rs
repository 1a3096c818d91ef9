//! HMAC-SHA256 (RFC 2104) with the key's inner and outer pad states computed once.
//!
//! A derived signing key signs every request in its scope; hashing its two pad blocks once
//! instead of per signature removes two of the SHA-256 blocks a signature costs (bench row
//! `warm cache GET`). The `hmac` crate can keep a keyed state too, but it can't be zeroized;
//! these states are plain arrays, wiped on drop. Checked against the `hmac` crate in the
//! tests.

use sha2::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The SHA-256 block size.
const BLOCK: usize = 64;

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// Secret bytes on the stack, zeroized on drop. `Zeroizing<[u8; N]>` would do, but zeroize
/// clears an array a volatile store per element and a slice in bulk; a cache-off signature
/// wipes about 400 bytes of such buffers (bench row `get-vanilla`, keyhold-cache-off). The
/// bytes are reached through `Deref`, never moved out (an array is `Copy`).
pub(crate) struct Wiped<const N: usize>([u8; N]);

impl<const N: usize> Wiped<N> {
    pub(crate) fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> std::ops::Deref for Wiped<N> {
    type Target = [u8; N];

    fn deref(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> std::ops::DerefMut for Wiped<N> {
    fn deref_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> Drop for Wiped<N> {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// An HMAC-SHA256 key as its two pad states. Zeroized on drop.
#[derive(Clone)]
pub(crate) struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Zeroize for HmacKey {
    fn zeroize(&mut self) {
        self.inner.as_mut_slice().zeroize();
        self.outer.as_mut_slice().zeroize();
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for HmacKey {}

impl HmacKey {
    /// Keys of up to 64 bytes (SigV4's are 32, or 44 for `"AWS4"+secret`); longer keys are
    /// hashed first, as RFC 2104 says.
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut hashed = Wiped::new([0u8; 32]);
        let key = if key.len() > BLOCK {
            sha256_into(key, &mut hashed);
            &hashed[..]
        } else {
            key
        };
        // The key XOR ipad, then the key XOR opad.
        let mut block = Wiped::new([0x36u8; BLOCK]);
        block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        let mut inner = INITIAL_STATE;
        compress(&mut inner, &block);
        block.iter_mut().for_each(|b| *b ^= 0x36 ^ 0x5c);
        let mut outer = INITIAL_STATE;
        compress(&mut outer, &block);
        Self { inner, outer }
    }

    /// HMAC of the concatenation of `parts`.
    #[cfg(test)]
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut out = [0; 32];
        self.mac_into(parts, &mut out);
        out
    }

    /// HMAC of the concatenation of `parts`, written to `out` (which the caller wipes).
    pub(crate) fn mac_into(&self, parts: &[&[u8]], out: &mut [u8; 32]) {
        let mut mac = self.begin();
        parts.iter().for_each(|part| mac.update(part));
        mac.finish_into(out);
    }

    /// An HMAC fed in pieces.
    pub(crate) fn begin(&self) -> MacStream<'_> {
        MacStream {
            key: self,
            inner: Sha256Stream::new(self.inner, BLOCK as u64),
        }
    }
}

/// An HMAC in progress (see [`HmacKey::begin`]). Its state is wiped on drop.
pub(crate) struct MacStream<'k> {
    key: &'k HmacKey,
    inner: Sha256Stream,
}

impl MacStream<'_> {
    /// Appends to the message.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The HMAC of everything given to [`MacStream::update`].
    pub(crate) fn finish(mut self) -> [u8; 32] {
        let mut out = [0; 32];
        self.finish_into(&mut out);
        out
    }

    /// `H(key XOR opad || H(key XOR ipad || message))`, the pads already absorbed.
    fn finish_into(&mut self, out: &mut [u8; 32]) {
        let mut outer = Sha256Stream::new(self.key.outer, BLOCK as u64);
        outer.absorb_digest_of(&mut self.inner);
        outer.finish_into(out);
    }
}

/// SHA-256 of `data` into a buffer the caller owns (and wipes: the input is a long key).
fn sha256_into(data: &[u8], out: &mut [u8; 32]) {
    let mut stream = Sha256Stream::new(INITIAL_STATE, 0);
    stream.update(data);
    stream.finish_into(out);
}

/// SHA-256 from a state: the initial one, or a pad state that has absorbed one block.
struct Sha256Stream {
    state: [u32; 8],
    buffer: [u8; BLOCK],
    buffered: usize,
    /// Bytes absorbed so far, the pad block included.
    length: u64,
}

impl Sha256Stream {
    /// A hash whose state is `state`, after `absorbed` bytes (0, or one pad block).
    fn new(state: [u32; 8], absorbed: u64) -> Self {
        Self {
            state,
            buffer: [0; BLOCK],
            buffered: 0,
            length: absorbed,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if self.buffered > 0 {
            let take = data.len().min(BLOCK - self.buffered);
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < BLOCK {
                return;
            }
            compress(&mut self.state, &self.buffer);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            compress(
                &mut self.state,
                block.try_into().expect("chunks_exact gives whole blocks"),
            );
        }
        let rest = blocks.remainder();
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Finishes `inner` and takes its digest as the start of this stream's message, written
    /// straight into the buffer (wiped on drop) rather than through a copy of its own: the
    /// outer hash of an HMAC, whose message is the inner digest.
    fn absorb_digest_of(&mut self, inner: &mut Sha256Stream) {
        assert_eq!(self.buffered, 0, "a digest is absorbed first");
        let slot: &mut [u8; 32] = (&mut self.buffer[..32])
            .try_into()
            .expect("a block has room for a digest");
        inner.finish_into(slot);
        self.buffered = 32;
        self.length += 32;
    }

    /// Pads (FIPS 180-4, 5.1.1), finishes and writes the digest to `out`. Call once.
    fn finish_into(&mut self, out: &mut [u8; 32]) {
        let bits = self.length * 8;
        self.buffer[self.buffered..].fill(0);
        self.buffer[self.buffered] = 0x80;
        if self.buffered + 1 > BLOCK - 8 {
            compress(&mut self.state, &self.buffer);
            self.buffer.fill(0);
        }
        self.buffer[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &self.buffer);
        for (chunk, word) in out.chunks_exact_mut(4).zip(&self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
    }
}

impl Drop for Sha256Stream {
    /// The state of an unfinished HMAC is keyed: wipe it with the buffer. As slices, which
    /// zeroize clears in bulk (an array is cleared a volatile store per element: 3% of a
    /// warm signature, bench row `shape-get-vanilla`, keyhold-parts).
    fn drop(&mut self) {
        self.state.as_mut_slice().zeroize();
        self.buffer.as_mut_slice().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use sha2::Sha256;

    use super::HmacKey;

    fn reference(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc4231_case_2() {
        let mac = HmacKey::new(b"Jefe").mac(&[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    proptest! {
        #[test]
        fn sha256_matches_the_sha2_crate(data in prop::collection::vec(any::<u8>(), 0..300)) {
            let expected: [u8; 32] = <Sha256 as sha2::Digest>::digest(&data).into();
            let mut ours = [0; 32];
            super::sha256_into(&data, &mut ours);
            prop_assert_eq!(ours, expected);
        }

        #[test]
        fn a_stream_in_pieces_matches_the_hmac_crate(
            key in prop::collection::vec(any::<u8>(), 0..100),
            data in prop::collection::vec(any::<u8>(), 0..300),
            cuts in prop::collection::vec(0usize..300, 0..4),
        ) {
            let key_state = HmacKey::new(&key);
            let mut mac = key_state.begin();
            let mut at = 0;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            for cut in cuts {
                mac.update(&data[at..cut]);
                at = cut;
            }
            mac.update(&data[at..]);
            prop_assert_eq!(mac.finish(), reference(&key, &data));
        }

        #[test]
        fn matches_the_hmac_crate(
            key in prop::collection::vec(any::<u8>(), 0..150),
            data in prop::collection::vec(any::<u8>(), 0..300),
            split in 0usize..300,
        ) {
            let split = split.min(data.len());
            let ours = HmacKey::new(&key).mac(&[&data[..split], &data[split..]]);
            prop_assert_eq!(ours, reference(&key, &data));
        }
    }
}
