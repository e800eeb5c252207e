//! Random and mutated inputs must never make `parse` panic, and results must stay consistent.

use std::path::Path;
use std::time::{Duration, Instant};

use awsu_profile::Error;

/// Inputs that reach every parser state, used as seeds for mutation.
const SEEDS: &[&str] = &[
    "[profile a]\nregion = x\n more\n",
    "[default]\ns3 =\n  style = path\n  x = 1\n",
    "# c\n; c\n[profile b] ; c\nk = v # c\nk2 = v;x\n",
    "[sso-session s]\nsso_region = us-east-1\n[services t]\ns3 =\n  endpoint_url = http://127.0.0.1\n",
    "[profile default]\na = 1\n[default]\nb = 2\n",
    "[a]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n[profile c]\n",
    "\u{feff}[profile \"q q\"]\r\nk = é😂\r\n",
];

/// Bytes that change the parser's decisions, plus some that are invalid in names.
const ALPHABET: &[&str] = &[
    "[",
    "]",
    "=",
    " ",
    "\t",
    "\n",
    "\r\n",
    "#",
    ";",
    "profile ",
    "default",
    "sso-session ",
    "services ",
    "a",
    "Z",
    "!",
    "\"",
    "'",
    "é",
    "😂",
    "\u{feff}",
    "\u{a0}",
    "\0",
];

/// Small xorshift generator, so failures reproduce from the printed seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, limit: usize) -> usize {
        (self.next() % limit as u64) as usize
    }
}

fn random_text(random: &mut Random) -> String {
    let length = random.below(40);
    (0..length)
        .map(|_| ALPHABET[random.below(ALPHABET.len())])
        .collect()
}

fn mutate(random: &mut Random, seed: &str) -> String {
    let mut characters: Vec<char> = seed.chars().collect();
    for _ in 0..=random.below(4) {
        let insert: Vec<char> = ALPHABET[random.below(ALPHABET.len())].chars().collect();
        let position = random.below(characters.len() + 1);
        match random.below(3) {
            0 if !characters.is_empty() => {
                characters.remove(position.min(characters.len() - 1));
            }
            _ => {
                characters.splice(position..position, insert);
            }
        }
    }
    characters.into_iter().collect()
}

/// Parses one input pair and checks invariants that hold for every successful parse.
fn check(config: &str, credentials: &str) {
    let config_path = Path::new("/c/config");
    let credentials_path = Path::new("/c/credentials");
    let config_lines = config.lines().count().max(1);
    let credentials_lines = credentials.lines().count().max(1);
    match awsu_profile::parse(config, config_path, credentials, credentials_path) {
        Ok(set) => {
            for name in set.names() {
                let profile = set.profile(name).expect("listed profile exists");
                assert_eq!(profile.name(), name);
                for key in profile.keys() {
                    assert_eq!(key, key.to_ascii_lowercase());
                    assert!(profile.get(key).is_some());
                    let location = profile.location(key).expect("listed key has a location");
                    let limit = if location.file == config_path {
                        config_lines
                    } else {
                        credentials_lines
                    };
                    assert!(location.line >= 1);
                    assert!(location.line <= limit, "line {} > {limit}", location.line);
                    let _ = profile.sub_properties(key);
                }
            }
            let _ = format!("{set:?}");
        }
        Err(Error::Syntax { line, file, .. }) => {
            let limit = if file == config_path {
                config_lines
            } else {
                credentials_lines
            };
            assert!(
                line >= 1 && line <= limit,
                "line {line} outside 1..={limit}"
            );
        }
        Err(other) => panic!("parse returned an unexpected error: {other}"),
    }
}

#[test]
fn random_inputs_do_not_panic() {
    let started = Instant::now();
    let budget = Duration::from_millis(1500);
    let seed = 0x5eed_cafe_f00d_u64;
    let mut random = Random(seed);
    let mut cases = 0u64;
    while started.elapsed() < budget && cases < 200_000 {
        let config = match random.below(2) {
            0 => random_text(&mut random),
            _ => {
                let base = SEEDS[random.below(SEEDS.len())];
                mutate(&mut random, base)
            }
        };
        let base = SEEDS[random.below(SEEDS.len())];
        let credentials = mutate(&mut random, base);
        let outcome = std::panic::catch_unwind(|| check(&config, &credentials));
        assert!(
            outcome.is_ok(),
            "panic after {cases} cases (seed {seed:#x}) on config {config:?} and credentials \
             {credentials:?}"
        );
        cases += 1;
    }
    assert!(
        cases > 1_000,
        "only {cases} cases ran within the time budget"
    );
}
