//! A seeded random-mutation fuzzer for everything a client's bytes reach before the app: the
//! request-head parser (at every limit setting and every split of the bytes), the body
//! decoder, trusted-proxy resolution and environ building. Runs on stable Rust with no tool
//! of its own: `make test` runs a bounded number of inputs, `make fuzz SECONDS=N` runs for a
//! while (`FERROGATE_FUZZ_SECONDS`, `FERROGATE_FUZZ_SEED`). Seeds: tests/fuzz/corpus/.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use pyo3::prelude::*;

use crate::config::IpRanges;
use crate::handler::ConnectionInfo;
use crate::http::h1::{parse_head, BodyDecoder, BodyFraming, Decoded};
use crate::http::limits::{Limits, MAX_HEAD_BYTES};
use crate::http::{forwarded, RequestBody};
use crate::wsgi::environ::EnvironBuilder;
use crate::wsgi::input::WsgiInput;
use crate::wsgi::WsgiConfig;

/// Inputs run by `make test` when no time is given: about 13 s on this machine.
const DEFAULT_INPUTS: u64 = 150_000;
/// Longest one input may take; anything slower is reported as a hang.
const MAX_INPUT_TIME: Duration = Duration::from_millis(500);

/// Bytes that matter to HTTP framing, favoured by the mutations.
const INTERESTING: &[u8] = b"\r\n :;,\t\0\x7f\xff0fF-=\"[]/?#%Hh";

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/corpus");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .expect("tests/fuzz/corpus exists")
        .map(|entry| std::fs::read(entry.expect("readable corpus").path()).expect("a seed"))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 20, "the seed corpus is missing");
    seeds
}

fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seeds[rng.usize(..seeds.len())].clone();
    for _ in 0..rng.usize(1..=6) {
        let at = rng.usize(..=input.len());
        match rng.u8(..8) {
            0 if !input.is_empty() => {
                let i = rng.usize(..input.len());
                input[i] ^= 1 << rng.u8(..8);
            }
            1 if !input.is_empty() => {
                let i = rng.usize(..input.len());
                input[i] = INTERESTING[rng.usize(..INTERESTING.len())];
            }
            2 => input.insert(at, INTERESTING[rng.usize(..INTERESTING.len())]),
            3 if at < input.len() => {
                let end = rng.usize(at..=input.len().min(at + 16));
                input.drain(at..end);
            }
            4 if at < input.len() => {
                let end = rng.usize(at..=input.len().min(at + 64));
                let copy = input[at..end].to_vec();
                let most = if rng.u8(..8) == 0 { 2000 } else { 4 };
                let times = rng.usize(1..=most);
                let repeated: Vec<u8> = copy.repeat(times);
                input.splice(at..at, repeated);
            }
            5 => {
                let other = &seeds[rng.usize(..seeds.len())];
                let from = rng.usize(..=other.len());
                input.splice(at..at, other[from..].iter().copied());
            }
            6 => input.insert(at, rng.u8(..)),
            _ => input.truncate(at),
        }
    }
    input
}

fn limit_sets() -> [Limits; 3] {
    let defaults = Limits::default();
    let tight = Limits {
        request_line_bytes: 32,
        header_fields: 4,
        header_field_bytes: 40,
        body_bytes: Some(16),
        ..Limits::default()
    };
    let open = Limits {
        request_line_bytes: usize::MAX,
        header_fields: usize::MAX,
        header_field_bytes: usize::MAX,
        any_method: true,
        ..Limits::default()
    };
    [defaults, tight, open]
}

/// One input through everything; panics (the failure) on a broken invariant.
fn exercise(py: Python<'_>, environ: &mut EnvironBuilder, input: &[u8], split: usize) {
    let trusted: IpRanges = "*".parse().expect("a valid list");
    for limits in limit_sets() {
        // Bytes arriving in two reads must parse as they do in one.
        let mut buf = BytesMut::from(&input[..split.min(input.len())]);
        let early = parse_head(&mut buf, &limits);
        if let Ok(None) = early {
            buf.extend_from_slice(&input[split.min(input.len())..]);
        } else {
            buf = BytesMut::from(input);
        }
        let parsed = parse_head(&mut buf, &limits);
        let Ok(Some(mut head)) = parsed else {
            if let Ok(None) = parsed {
                assert!(
                    buf.len() < MAX_HEAD_BYTES,
                    "a head over the cap is still read"
                );
            }
            continue;
        };
        let blank = input
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let head_bytes = input.len() - buf.len() - blank;
        assert!(
            head_bytes <= MAX_HEAD_BYTES,
            "a head of {head_bytes} bytes was accepted"
        );
        let mut info = ConnectionInfo::direct(
            Some("127.0.0.1:1".parse().expect("an address")),
            Some("127.0.0.1:2".parse().expect("an address")),
        );
        let _ = forwarded::resolve(&mut head.parts, &mut info, &trusted);
        let mut decoder = BodyDecoder::new(head.framing, limits.body_bytes);
        let mut decoded = 0usize;
        let available = buf.len();
        while let Ok(Decoded::Data(data)) = decoder.decode(&mut buf) {
            decoded += data.len();
        }
        assert!(decoded <= available, "decoded more body than arrived");
        if head.framing == BodyFraming::Empty {
            assert_eq!(decoded, 0);
        }
        let body = Some(RequestBody::complete(bytes::Bytes::new()));
        let wsgi_input =
            Bound::new(py, WsgiInput::new(body, Duration::from_secs(1))).expect("a WsgiInput");
        let built = environ.build(py, &head.parts, &info, wsgi_input);
        assert!(built.is_ok(), "environ building failed: {built:?}");
    }
}

#[test]
fn request_parsing_survives_mutated_requests() {
    let seconds: Option<u64> = std::env::var("FERROGATE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("FERROGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3333);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let seeds = corpus();
    let mut rng = fastrand::Rng::with_seed(seed);
    Python::initialize();
    let runs = Python::attach(|py| {
        let config = WsgiConfig {
            threads: 1,
            workers: 1,
            root_path: String::new(),
            debug: false,
            socket_timeout: Duration::from_secs(1),
            shedding: Default::default(),
            request_timeout: Default::default(),
        };
        let mut environ = EnvironBuilder::new(py, &config).expect("an environ template");
        let mut runs = 0u64;
        for seed_input in &seeds {
            exercise(py, &mut environ, seed_input, seed_input.len() / 2);
        }
        loop {
            let input = mutate(&mut rng, &seeds);
            let split = rng.usize(..=input.len());
            let started = Instant::now();
            exercise(py, &mut environ, &input, split);
            assert!(
                started.elapsed() < MAX_INPUT_TIME,
                "input took {:?}: {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&input[..input.len().min(300)])
            );
            runs += 1;
            let done = match deadline {
                Some(deadline) => Instant::now() >= deadline,
                None => runs >= DEFAULT_INPUTS,
            };
            if done {
                return runs;
            }
        }
    });
    eprintln!("fuzz: {runs} mutated inputs (seed {seed}), no panic, no hang");
}
