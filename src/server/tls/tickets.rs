//! Session tickets every worker can open: the stateless resumption keys (TLS 1.3 PSK
//! tickets, TLS 1.2 RFC 5077 tickets), made once in the master before it forks, and rotated
//! by every process alike with no coordination.
//!
//! Why not rustls' `Ticketer`: its keys are random per rotation, so workers forked from one
//! master share the first key only and part ways at its first rotation (6 h); and it rejects
//! any ticket longer than the longest it has sealed itself, so a fresh worker refuses every
//! ticket until it has issued one (the "first resumption on another worker is a full
//! handshake" of issue 13).
//!
//! Rotation is a ratchet on wall-clock epochs of `TICKET_KEY_PERIOD`: the secret of epoch
//! n+1 is HKDF-Expand(secret n), the ticket key of epoch n is another expansion of secret n.
//! A process that holds the secret of an epoch at or before the current one steps it forward
//! and forgets the older ones, so every worker (forked at start, on a respawn, after a
//! reload) seals with the same key at the same time and opens the current and previous
//! epochs' tickets. What leaks with a process's memory is the key of its epoch and those
//! after it, never an earlier one (key erasure, as rustls' rotator gives). The master steps
//! its copy before each fork (`roll`).

use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{self, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf::{KeyType, Prk, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// How long one ticket key seals new tickets; it opens them for one more period after that.
/// rustls' own ticketer uses 6 h; a ticket then lives 6 to 12 h.
pub const TICKET_KEY_PERIOD_SECS: u64 = 6 * 60 * 60;

/// The lifetime announced to clients (RFC 8446 §4.6.1 `ticket_lifetime`): two periods, the
/// most a ticket is accepted for, as rustls announces for its rotator.
const TICKET_LIFETIME_SECS: u32 = 2 * TICKET_KEY_PERIOD_SECS as u32;

/// A ticket longer than the protocol can carry is not tried (rustls' ticketer bounds it by
/// the longest ticket it sealed, which a fresh worker has not). TLS 1.3 and TLS 1.2 both
/// carry a ticket in a 16-bit length.
const MAX_TICKET_BYTES: usize = u16::MAX as usize;

/// Bytes of the key name at the head of a ticket: picks the epoch's key without a trial
/// decryption.
const KEY_NAME_BYTES: usize = 16;

const SECRET_BYTES: usize = 32;

/// HKDF output of `n` bytes (ring asks for the length through a `KeyType`).
struct Bytes(usize);

impl KeyType for Bytes {
    fn len(&self) -> usize {
        self.0
    }
}

/// One epoch's ticket key and the name its tickets carry.
struct EpochKey {
    name: [u8; KEY_NAME_BYTES],
    key: LessSafeKey,
}

/// The ratchet's position: the current epoch's secret and keys, and the previous key.
struct Ratchet {
    epoch: u64,
    secret: [u8; SECRET_BYTES],
    current: EpochKey,
    previous: Option<EpochKey>,
}

impl Ratchet {
    fn new(epoch: u64, secret: [u8; SECRET_BYTES]) -> Ratchet {
        let current = epoch_key(&secret);
        Ratchet {
            epoch,
            secret,
            current,
            previous: None,
        }
    }

    /// Steps forward to `epoch` (a clock that went back keeps the position it has).
    fn step_to(&mut self, epoch: u64) {
        while self.epoch < epoch {
            let next = expand(&self.secret, b"ferrogate ticket ratchet", SECRET_BYTES);
            self.secret.copy_from_slice(&next);
            self.epoch += 1;
            let next_key = epoch_key(&self.secret);
            self.previous = Some(std::mem::replace(&mut self.current, next_key));
        }
    }
}

fn expand(secret: &[u8; SECRET_BYTES], info: &'static [u8], len: usize) -> Vec<u8> {
    let prk = Prk::new_less_safe(HKDF_SHA256, secret);
    let mut out = vec![0u8; len];
    prk.expand(&[info], Bytes(len))
        .and_then(|okm| okm.fill(&mut out))
        .expect("invariant: HKDF-SHA256 expands up to 8160 bytes");
    out
}

fn epoch_key(secret: &[u8; SECRET_BYTES]) -> EpochKey {
    let mut name = [0u8; KEY_NAME_BYTES];
    name.copy_from_slice(&expand(secret, b"ferrogate ticket name", KEY_NAME_BYTES));
    let key = expand(secret, b"ferrogate ticket key", CHACHA20_POLY1305.key_len());
    let key = UnboundKey::new(&CHACHA20_POLY1305, &key)
        .expect("invariant: the key has the algorithm's length");
    EpochKey {
        name,
        key: LessSafeKey::new(key),
    }
}

fn epoch_now() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs() / TICKET_KEY_PERIOD_SECS
}

/// The ticketer shared by a master and its workers (see the module doc).
pub struct SharedTicketer {
    ratchet: RwLock<Ratchet>,
    random: SystemRandom,
}

impl std::fmt::Debug for SharedTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedTicketer")
    }
}

impl SharedTicketer {
    /// A fresh random secret for the current epoch.
    pub fn new() -> Result<SharedTicketer, ring::error::Unspecified> {
        let random = SystemRandom::new();
        let mut secret = [0u8; SECRET_BYTES];
        random.fill(&mut secret)?;
        Ok(SharedTicketer::with_secret(epoch_now(), secret))
    }

    fn with_secret(epoch: u64, secret: [u8; SECRET_BYTES]) -> SharedTicketer {
        SharedTicketer {
            ratchet: RwLock::new(Ratchet::new(epoch, secret)),
            random: SystemRandom::new(),
        }
    }

    /// Steps to the current epoch, forgetting older keys (the master calls it before each
    /// fork: it seals nothing itself, so nothing else would move it on).
    pub fn roll(&self) {
        self.roll_to(epoch_now());
    }

    fn roll_to(&self, epoch: u64) {
        let behind = self
            .ratchet
            .read()
            .map(|r| r.epoch < epoch)
            .unwrap_or(false);
        if behind {
            if let Ok(mut ratchet) = self.ratchet.write() {
                ratchet.step_to(epoch);
            }
        }
    }

    fn seal_at(&self, epoch: u64, message: &[u8]) -> Option<Vec<u8>> {
        self.roll_to(epoch);
        let ratchet = self.ratchet.read().ok()?;
        let mut nonce = [0u8; NONCE_LEN];
        // A random nonce: a counter would need sharing between the workers, and tells how
        // many tickets were issued.
        self.random.fill(&mut nonce).ok()?;
        let key = &ratchet.current;
        let mut ticket = Vec::with_capacity(
            KEY_NAME_BYTES + NONCE_LEN + message.len() + CHACHA20_POLY1305.tag_len(),
        );
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(message);
        let tag = key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(key.name),
                &mut ticket[KEY_NAME_BYTES + NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    fn open_at(&self, epoch: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET_BYTES || ticket.len() < KEY_NAME_BYTES + NONCE_LEN {
            return None;
        }
        self.roll_to(epoch);
        let ratchet = self.ratchet.read().ok()?;
        let (name, rest) = ticket.split_at(KEY_NAME_BYTES);
        let key = [Some(&ratchet.current), ratchet.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.name == name)?;
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut plain = sealed.to_vec();
        let length = key
            .key
            .open_in_place(nonce, aead::Aad::from(key.name), &mut plain)
            .ok()?
            .len();
        plain.truncate(length);
        Some(plain)
    }
}

impl ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    fn encrypt(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.seal_at(epoch_now(), message)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        self.open_at(epoch_now(), ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; SECRET_BYTES] = [7; SECRET_BYTES];

    #[test]
    fn a_ticket_opens_in_another_process_with_the_same_start() {
        // Two "workers" forked from one master hold the same ratchet.
        let (one, two) = (
            SharedTicketer::with_secret(100, SECRET),
            SharedTicketer::with_secret(100, SECRET),
        );
        let ticket = one.seal_at(100, b"session").unwrap();
        assert_eq!(two.open_at(100, &ticket).unwrap(), b"session");
    }

    #[test]
    fn a_fresh_worker_opens_a_ticket_before_sealing_any() {
        // rustls' ticketer refuses here: its length bound starts at zero.
        let master = SharedTicketer::with_secret(100, SECRET);
        let other = SharedTicketer::with_secret(100, SECRET);
        let ticket = master.seal_at(100, &[1; 3000]).unwrap();
        assert_eq!(other.open_at(100, &ticket).unwrap(), vec![1; 3000]);
    }

    #[test]
    fn workers_forked_epochs_apart_agree_on_the_key() {
        // A worker forked at start and one respawned two epochs later by a master that
        // rolled in between seal the same way.
        let early = SharedTicketer::with_secret(100, SECRET);
        let master = SharedTicketer::with_secret(100, SECRET);
        master.roll_to(102);
        let ticket = early.seal_at(103, b"s").unwrap();
        assert_eq!(master.open_at(103, &ticket).unwrap(), b"s");
    }

    #[test]
    fn a_ticket_opens_for_one_period_after_its_own_and_not_two() {
        let (sealer, opener) = (
            SharedTicketer::with_secret(100, SECRET),
            SharedTicketer::with_secret(100, SECRET),
        );
        let ticket = sealer.seal_at(100, b"s").unwrap();
        assert!(opener.open_at(100, &ticket).is_some());
        assert!(opener.open_at(101, &ticket).is_some());
        assert!(opener.open_at(102, &ticket).is_none());
    }

    #[test]
    fn another_secret_or_a_changed_byte_is_refused() {
        let sealer = SharedTicketer::with_secret(100, SECRET);
        let stranger = SharedTicketer::with_secret(100, [8; SECRET_BYTES]);
        let mut ticket = sealer.seal_at(100, b"session").unwrap();
        assert!(stranger.open_at(100, &ticket).is_none());
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(sealer.open_at(100, &ticket).is_none());
        assert!(sealer.open_at(100, &[0; 10]).is_none());
    }

    #[test]
    fn tickets_at_the_length_limit_are_tried_and_over_it_are_not() {
        let ticketer = SharedTicketer::with_secret(100, SECRET);
        let overhead = KEY_NAME_BYTES + NONCE_LEN + CHACHA20_POLY1305.tag_len();
        let at = ticketer
            .seal_at(100, &vec![0; MAX_TICKET_BYTES - overhead])
            .unwrap();
        assert_eq!(at.len(), MAX_TICKET_BYTES);
        assert!(ticketer.open_at(100, &at).is_some());
        let below = ticketer
            .seal_at(100, &vec![0; MAX_TICKET_BYTES - overhead - 1])
            .unwrap();
        assert!(ticketer.open_at(100, &below).is_some());
        let over = ticketer
            .seal_at(100, &vec![0; MAX_TICKET_BYTES - overhead + 1])
            .unwrap();
        assert!(ticketer.open_at(100, &over).is_none());
    }

    #[test]
    fn a_clock_that_goes_back_keeps_the_current_key() {
        let ticketer = SharedTicketer::with_secret(100, SECRET);
        let ticket = ticketer.seal_at(101, b"s").unwrap();
        assert_eq!(ticketer.open_at(99, &ticket).unwrap(), b"s");
    }
}
