//! HMAC-SHA256 with the key's inner and outer pad states computed once.
//!
//! A derived signing key is used for every request in its scope; hashing its two pad blocks
//! once instead of per signature removes two of the ~ten SHA-256 blocks a signature costs.
//! The `hmac` crate can do this too, but its keyed state can't be zeroized; these states
//! are plain arrays and are wiped on drop. Checked against the `hmac` crate in the tests.
//!
//! Buffers that held secret-derived bytes are stored as `u64` words and viewed as bytes, so
//! wiping one is eight volatile stores rather than sixty-four: on the cache-off path, where
//! every signature derives four keys, byte-wise wiping was a visible share of the time.

use sha2::digest::generic_array::GenericArray;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The SHA-256 block size.
pub(crate) const BLOCK: usize = 64;

/// A SHA-256 block stored as words (see the module docs).
type Block = [u64; BLOCK / 8];

/// 32 bytes (a digest or derived key) stored as words, viewed with [`bytes32`].
pub(crate) type Key32 = [u64; 4];

/// The bytes of a word-stored 32-byte value.
pub(crate) fn bytes32(words: &Key32) -> &[u8; 32] {
    bytemuck::cast_ref(words)
}

/// The bytes of a word-stored 32-byte value, to write into.
pub(crate) fn bytes32_mut(words: &mut Key32) -> &mut [u8; 32] {
    bytemuck::cast_mut(words)
}

fn block_bytes(block: &Block) -> &[u8; BLOCK] {
    bytemuck::cast_ref(block)
}

fn block_bytes_mut(block: &mut Block) -> &mut [u8; BLOCK] {
    bytemuck::cast_mut(block)
}
const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// An HMAC-SHA256 key as its two pad states. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    /// Keys of up to 64 bytes (SigV4's are 32, or 44 for `"AWS4"+secret`); longer keys are
    /// hashed first, as RFC 2104 says.
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut hashed: Key32 = [0; 4];
        let key = if key.len() > BLOCK {
            sha256_into(key, bytes32_mut(&mut hashed));
            &bytes32(&hashed)[..]
        } else {
            key
        };
        // One block holds the key XOR ipad, then (flipped in place) the key XOR opad.
        let mut block: Block = [u64::from_ne_bytes([0x36; 8]); BLOCK / 8];
        let bytes = block_bytes_mut(&mut block);
        bytes.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
        let mut inner = INITIAL_STATE;
        compress(&mut inner, bytes);
        let flip = u64::from_ne_bytes([0x36 ^ 0x5c; 8]);
        block.iter_mut().for_each(|w| *w ^= flip);
        let mut outer = INITIAL_STATE;
        compress(&mut outer, block_bytes(&block));
        block.zeroize();
        hashed.zeroize();
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
    ///
    /// The outer hash is always one block (pad state, then the 32-byte inner digest), and
    /// so is the inner hash of a message of up to 55 bytes (SigV4's key-chain steps): those
    /// blocks are built in place and compressed directly, without the streaming buffer.
    pub(crate) fn mac_into(&self, parts: &[&[u8]], out: &mut [u8; 32]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > BLOCK - 9 {
            let mut mac = self.begin();
            for part in parts {
                mac.update(part);
            }
            mac.finish_into(out);
            return;
        }
        let mut inner_digest: Key32 = [0; 4];
        let mut block: Block = [0; BLOCK / 8];
        let bytes = block_bytes_mut(&mut block);
        let mut at = 0;
        for part in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        final_block(self.inner, bytes, total, bytes32_mut(&mut inner_digest));
        block.zeroize();
        self.finish_outer(&inner_digest, out);
        inner_digest.zeroize();
    }

    /// An HMAC fed in pieces: for a message whose later bytes are not known yet, so that
    /// the blocks already known can be hashed first.
    pub(crate) fn begin(&self) -> MacStream<'_> {
        MacStream {
            key: self,
            inner: Sha256Stream::new(self.inner, BLOCK as u64),
        }
    }

    fn finish_outer(&self, inner_digest: &Key32, out: &mut [u8; 32]) {
        let mut block: Block = [0; BLOCK / 8];
        let bytes = block_bytes_mut(&mut block);
        bytes[..32].copy_from_slice(bytes32(inner_digest));
        final_block(self.outer, bytes, 32, out);
        block.zeroize();
    }
}

/// An HMAC in progress (see [`HmacKey::begin`]). Its state is wiped on drop.
pub(crate) struct MacStream<'k> {
    key: &'k HmacKey,
    inner: Sha256Stream,
}

impl MacStream<'_> {
    /// Appends to the message. Whole blocks are compressed straight from `data`.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The HMAC of everything given to [`MacStream::update`].
    pub(crate) fn finish(mut self) -> [u8; 32] {
        let mut out = [0; 32];
        self.finish_into(&mut out);
        out
    }

    fn finish_into(&mut self, out: &mut [u8; 32]) {
        let mut inner_digest: Key32 = [0; 4];
        self.inner.finish_into(bytes32_mut(&mut inner_digest));
        self.key.finish_outer(&inner_digest, out);
        inner_digest.zeroize();
    }
}

/// SHA-256 of `data` in one call, on the same code path as the HMACs: the canonical
/// request's hash and the key chain run one SHA-256 routine, not two. (A request body is
/// hashed by the `sha2` crate's, which compresses many blocks per call.)
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    sha256_into(data, &mut out);
    out
}

/// [`sha256`] into a buffer the caller owns (and wipes, when the input is secret).
fn sha256_into(data: &[u8], out: &mut [u8; 32]) {
    let mut stream = Sha256Stream::new(INITIAL_STATE, 0);
    stream.update(data);
    stream.finish_into(out);
}

/// Finishes a hash whose state has absorbed exactly one block (a pad) and whose remaining
/// `len` bytes (at most 55) are at the start of `block`, the rest of which is zero.
fn final_block(mut state: [u32; 8], block: &mut [u8; BLOCK], len: usize, out: &mut [u8; 32]) {
    block[len] = 0x80;
    let bits = ((BLOCK + len) as u64) * 8;
    block[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
    compress(&mut state, block);
    write_digest(&state, out);
}

fn write_digest(state: &[u32; 8], out: &mut [u8; 32]) {
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// SHA-256 from a state: the initial one, or a pad state that has absorbed one block.
struct Sha256Stream {
    state: [u32; 8],
    buffer: Block,
    buffered: usize,
    length: u64,
}

impl Sha256Stream {
    /// A hash whose state is `state`, after `absorbed` bytes (0, or one pad block).
    fn new(state: [u32; 8], absorbed: u64) -> Self {
        Self {
            state,
            buffer: [0; BLOCK / 8],
            buffered: 0,
            length: absorbed,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length += data.len() as u64;
        if self.buffered > 0 {
            let take = data.len().min(BLOCK - self.buffered);
            let buffer = block_bytes_mut(&mut self.buffer);
            buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < BLOCK {
                return;
            }
            compress(&mut self.state, buffer);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(BLOCK);
        for block in &mut blocks {
            let block: &[u8; BLOCK] = block.try_into().unwrap_or(&[0; BLOCK]);
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        block_bytes_mut(&mut self.buffer)[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads, finishes and writes the digest to `out`. Call once; drop wipes the rest.
    fn finish_into(&mut self, out: &mut [u8; 32]) {
        let bits = self.length * 8;
        // Zero whole words past the data (no byte-wise fill), then the rest of its last word.
        let first_clear_word = self.buffered.div_ceil(8);
        self.buffer[first_clear_word..].fill(0);
        let buffer = block_bytes_mut(&mut self.buffer);
        buffer[self.buffered..(first_clear_word * 8).max(self.buffered)].fill(0);
        buffer[self.buffered] = 0x80;
        if self.buffered + 1 > BLOCK - 8 {
            compress(&mut self.state, buffer);
            buffer.fill(0);
        }
        buffer[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, buffer);
        write_digest(&self.state, out);
    }
}

impl Drop for Sha256Stream {
    /// The state of an unfinished HMAC is keyed: wipe it with the buffer.
    fn drop(&mut self) {
        self.state.zeroize();
        self.buffer.zeroize();
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
            prop_assert_eq!(super::sha256(&data), expected);
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
