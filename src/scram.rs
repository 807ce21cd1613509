//! SCRAM-SHA-256 password verifiers, computed here so a role's password never
//! travels to the server in plain text.
//!
//! `CREATE ROLE … PASSWORD '<plain>'` puts the password in the statement, and
//! with it in the server log of any failed statement (and of every statement
//! under `log_statement = all`), in `pg_stat_activity` and in any statement
//! tracing. Given a verifier instead, PostgreSQL stores it as is. This is what
//! libpq's `PQencryptPasswordConn` and psql's `\password` do, and the same
//! computation as PostgreSQL's `scram_build_secret`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default (`scram_iterations`).
const ITERATIONS: u32 = 4096;
/// PostgreSQL's `SCRAM_DEFAULT_SALT_LEN`.
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("no random bytes for a password salt from the operating system: {0}")]
pub struct NoRandomness(String);

/// `SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>` for `password`, with
/// a fresh random salt.
pub fn verifier(password: &str) -> Result<String, NoRandomness> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(verifier_with(password, &salt, ITERATIONS))
}

fn verifier_with(password: &str, salt: &[u8], iterations: u32) -> String {
    // As PostgreSQL's pg_saslprep: a password SASLprep refuses (or maps to
    // nothing) is used as its raw bytes; the client does the same when it logs in.
    let prepared = match stringprep::saslprep(password) {
        Ok(prepared) if !prepared.is_empty() => prepared,
        _ => password.into(),
    };
    let salted = salted_password(prepared.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// PBKDF2-HMAC-SHA-256 with one output block (SCRAM's `Hi`).
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut result = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (r, b) in result.iter_mut().zip(u) {
            *r ^= b;
        }
    }
    result
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rolpassword` as PostgreSQL 15 stored it after
    /// `SET password_encryption = 'scram-sha-256'; CREATE ROLE v PASSWORD '…'`:
    /// recomputed with the same salt, the keys must match exactly.
    fn matches_postgres(password: &str, stored: &str) {
        let (_, rest) = stored.split_once('$').unwrap();
        let (iterations_and_salt, _) = rest.split_once('$').unwrap();
        let (iterations, salt) = iterations_and_salt.split_once(':').unwrap();
        let salt = BASE64.decode(salt).unwrap();
        assert_eq!(
            verifier_with(password, &salt, iterations.parse().unwrap()),
            stored,
            "{password:?}"
        );
    }

    #[test]
    fn an_ascii_password_gives_the_verifier_postgres_computes() {
        matches_postgres(
            "pencil",
            "SCRAM-SHA-256$4096:eYWtcELuIVNhB2RF7BLLvQ==$5LPUrhsvxS5awMhJ6Nt+i+YaNtf+g0C8UCUPbkuneIA=:yoDspbwH5WRpUp1haiioMFpp+xW+sB2b5PSsQ/DNyv4=",
        );
        // A control character: SASLprep refuses it, so the raw bytes are used.
        matches_postgres(
            "tab\there",
            "SCRAM-SHA-256$4096:K/GDspiNIpeFnj5an+LZ1Q==$e0pr6XSQcEGoIo/9hxlfCuymwad1sNqAEytU7dZgVqE=:AS1jDrYCxvX4031K9rFZL38/noBEf0i0L89Q0cFlxAg=",
        );
    }

    #[test]
    fn a_non_ascii_password_is_saslprepped_as_postgres_does() {
        // No-break space maps to a space, Ⅸ normalises to IX.
        matches_postgres(
            "Pa\u{df}w\u{f6}rd\u{a0}\u{2168}",
            "SCRAM-SHA-256$4096:PRNXuU/FxRz0+Drv/3lgFw==$PZlefkZCbr73EplUaCcOXUopChiY5Y5MJn3D5nsjcWc=:7K6q9cUR/FTd8mSDYeRlbGruveOvv2jKw4kGaZ6mGDc=",
        );
        // Maps to nothing: PostgreSQL falls back to the raw bytes.
        matches_postgres(
            "\u{ad}",
            "SCRAM-SHA-256$4096:BZX5GS+pJNg7ilcuLcEBlw==$oblBFNqSYlh8ln9MqbFZWtMH2NAYpF2syusFUWRsjVI=:2o/JakLgPiaEXfFSyO1LCU9+d5SneG4ks4c3Rs9lEPQ=",
        );
        // Mixed bidirectional text: SASLprep refuses it, raw bytes again.
        matches_postgres(
            "\u{627}1",
            "SCRAM-SHA-256$4096:XpsdWAvf+MIU6Gm2WcMgww==$oHeZepNYXK8JtQQXXJOivUhrZXslhvAEQKsGxbZIqxE=:FhyR/tNDEB4onASSZfurz3oO8YXXjKhmdcdOYNIHGzk=",
        );
    }

    #[test]
    fn each_verifier_has_its_own_salt_and_never_holds_the_password() {
        let first = verifier("pencil-pencil").unwrap();
        let second = verifier("pencil-pencil").unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with("SCRAM-SHA-256$4096:"), "{first}");
        assert!(!first.contains("pencil"));
        let salt = first.split(['$', ':']).nth(2).unwrap();
        assert_eq!(BASE64.decode(salt).unwrap().len(), SALT_LEN);
    }
}
