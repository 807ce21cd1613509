//! Connecting to the admin database: the connection string read the way
//! libpq reads it (`connect_timeout`, `PGCONNECT_TIMEOUT`), a wait that always
//! ends, and messages that name the server without ever showing a password.
//!
//! A password can sit in many places of a connection string, and a user who
//! mistypes one (an unencoded `/` or `#` in the password, a missing `@`) gets
//! a string no URL parser understands. So what is shown is decided by a
//! lenient reading of the text ([`redact`]), never by the parser, and a
//! message never quotes the parser's or the driver's text without first
//! scrubbing every secret it could contain.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::cli::database_url;
use crate::errors::database_message;

/// How long a connection attempt may take when neither the URL nor the
/// environment says: long enough for a slow network, short enough that a CI
/// job pointed at a dead address fails instead of hanging.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys whose value is a secret, in a URL query or a key=value string
/// (compared case-insensitively: being wrong about case must not show one).
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

/// What replaces a secret in anything shown.
const MASK: &str = "***";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no database to connect to: pass --database-url, or set RLSCTL_ADMIN_DATABASE_URL or DATABASE_URL"
    )]
    NoUrl,
    #[error("cannot connect to {shown}: {reason}")]
    Invalid { shown: String, reason: String },
    #[error(
        "cannot connect to {shown}: no answer within {} s ({timeout_from}); to wait longer, set connect_timeout=SECONDS in the URL or PGCONNECT_TIMEOUT (0 waits forever)",
        .timeout.as_secs()
    )]
    TimedOut {
        shown: String,
        timeout: Duration,
        timeout_from: TimeoutFrom,
    },
    #[error("cannot connect to {shown}: {message}")]
    Failed { shown: String, message: String },
}

/// Where the connect timeout in force came from, for the timeout message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutFrom {
    Url,
    Environment,
    Default,
}

impl std::fmt::Display for TimeoutFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutFrom::Url => "connect_timeout in the URL",
            TimeoutFrom::Environment => "PGCONNECT_TIMEOUT",
            TimeoutFrom::Default => "the default",
        })
    }
}

/// Connects to the database the flag or the environment names.
pub async fn connect(url_flag: &Option<String>) -> Result<PgConnection, ConnectError> {
    let Some(url) = database_url(url_flag) else {
        return Err(ConnectError::NoUrl);
    };
    connect_to(&url).await
}

/// Connects, giving up after the connect timeout; a failure names the server
/// with its password masked.
pub async fn connect_to(url: &str) -> Result<PgConnection, ConnectError> {
    // Read where libpq (and sqlx, for PGHOST, PGUSER…) reads its variables.
    let environment = std::env::var("PGCONNECT_TIMEOUT").ok();
    let target = Target::parse(url, environment.as_deref())?;
    let attempt = PgConnection::connect_with(&target.options);
    let result =
        match target.timeout {
            Some(timeout) => tokio::time::timeout(timeout, attempt).await.map_err(|_| {
                ConnectError::TimedOut {
                    shown: target.masked.shown.clone(),
                    timeout,
                    timeout_from: target.timeout_from,
                }
            })?,
            None => attempt.await,
        };
    result.map_err(|e| ConnectError::Failed {
        message: target.masked.scrub(&database_message(&e)),
        shown: target.masked.shown.clone(),
    })
}

/// A connection string read for connecting.
struct Target {
    options: PgConnectOptions,
    /// `None`: wait as long as it takes (a timeout of 0, as in libpq).
    timeout: Option<Duration>,
    timeout_from: TimeoutFrom,
    masked: Masked,
}

impl Target {
    fn parse(conninfo: &str, environment_timeout: Option<&str>) -> Result<Target, ConnectError> {
        let masked = Masked::new(conninfo);
        let invalid = |reason: String| ConnectError::Invalid {
            shown: masked.shown.clone(),
            reason,
        };
        if !conninfo.contains("://") {
            return Err(invalid(if looks_like_key_value(conninfo) {
                "rlsctl takes a URL (postgres://user:password@host:port/database), not a key=value connection string".into()
            } else {
                "not a URL: expected postgres://user:password@host:port/database".into()
            }));
        }
        // `url::ParseError` says what is wrong in fixed words, never quoting the input.
        let mut url = url::Url::parse(conninfo).map_err(|e| {
            invalid(match e {
                // libpq reads `postgresql://user@/db` as the default socket;
                // a URL cannot hold a user without a host.
                url::ParseError::EmptyHost if conninfo.contains("@/") => {
                    "not a valid URL (a user but no host); for a Unix socket name the directory as the host, percent-encoded (postgresql://user@%2Fvar%2Frun%2Fpostgresql/db), or leave the host out and pass the user as a parameter (postgresql:///db?host=/var/run/postgresql&user=name)".into()
                }
                _ => format!(
                    "not a valid URL ({e}); a password holding / ? # @ % or spaces must be percent-encoded (/ as %2F, ? as %3F, # as %23, @ as %40, % as %25, space as %20)"
                ),
            })
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid(format!(
                "the URL's scheme is `{}`: expected postgres:// or postgresql://",
                url.scheme()
            )));
        }
        let from_url = url
            .query_pairs()
            .find(|(key, _)| key == "connect_timeout")
            .map(|(_, value)| value.into_owned());
        let (timeout, timeout_from) = match (&from_url, environment_timeout) {
            (Some(value), _) => (
                seconds(value).ok_or_else(|| {
                    invalid("connect_timeout in the URL is not a whole number of seconds".into())
                })?,
                TimeoutFrom::Url,
            ),
            (None, Some(value)) if !value.trim().is_empty() => (
                seconds(value).ok_or_else(|| {
                    invalid(format!(
                        "PGCONNECT_TIMEOUT={value:?} is not a whole number of seconds"
                    ))
                })?,
                TimeoutFrom::Environment,
            ),
            _ => (Some(DEFAULT_CONNECT_TIMEOUT), TimeoutFrom::Default),
        };
        if from_url.is_some() {
            // sqlx does not know libpq's parameter; it is ours to honour.
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(key, _)| key != "connect_timeout")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if kept.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(kept);
            }
        }
        let options = PgConnectOptions::from_url(&url)
            .map_err(|e| invalid(masked.scrub(&database_message(&e))))?;
        Ok(Target {
            options,
            timeout,
            timeout_from,
            masked,
        })
    }
}

/// libpq's reading of a timeout: whole seconds; zero or less waits forever.
fn seconds(value: &str) -> Option<Option<Duration>> {
    let seconds = i64::from_str(value.trim()).ok()?;
    Some((seconds > 0).then(|| Duration::from_secs(seconds.unsigned_abs())))
}

/// A connection string with every password replaced, for every message
/// rlsctl prints. Works on any text, parseable or not: where it cannot tell
/// a password from a host, it masks both.
pub fn redact(conninfo: &str) -> String {
    Masked::new(conninfo).shown
}

/// Free text (a usage error that echoes what was typed) with every
/// connection string in it redacted: each word that holds `://` or a
/// `password=` is masked as [`redact`] masks a connection string.
pub fn redact_in_message(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&redact_word(word));
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '\'' | '"' | '`') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn redact_word(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if let Some(scheme) = word.find("://") {
        // `--database-url=postgres://…`: keep the flag, mask from the scheme.
        let start = word[..scheme]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        format!("{}{}", &word[..start], redact(&word[start..]))
    } else if lower.contains("password=") {
        let at = lower.find("password=").unwrap_or(0) + "password=".len();
        format!("{}***", &word[..at])
    } else {
        word.to_string()
    }
}

/// The shown form of a connection string and the secrets it held.
#[derive(Debug)]
struct Masked {
    shown: String,
    /// Each masked value as written and percent-decoded, for [`Masked::scrub`].
    secrets: Vec<String>,
}

impl Masked {
    fn new(conninfo: &str) -> Masked {
        let mut masked = Masked {
            shown: String::new(),
            secrets: Vec::new(),
        };
        let scheme = conninfo
            .find("://")
            .filter(|&end| is_scheme(&conninfo[..end]));
        masked.shown = match scheme {
            Some(end) => {
                let authority_and_rest = masked.url_tail(&conninfo[end + 3..]);
                format!("{}://{authority_and_rest}", &conninfo[..end])
            }
            None if looks_like_key_value(conninfo) => masked.key_value(conninfo),
            None => masked.url_tail(conninfo),
        };
        masked
    }

    fn secret(&mut self, value: &str) {
        for form in [value.to_string(), percent_decoded(value)] {
            if !form.is_empty() && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
    }

    /// `text` (a driver's message) with each secret replaced. Secrets shorter
    /// than four characters are left: replacing them would garble ordinary
    /// words, and such a password is no secret to anyone guessing.
    fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<&String> = self.secrets.iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.iter().fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), MASK)
        })
    }

    /// Everything after `scheme://` (or a scheme-less `user:password@host…`).
    /// The userinfo ends at the *last* `@`: a password may hold `@`, and an
    /// unencoded `/ ? #` in it must not make it look like a host or a path.
    fn url_tail(&mut self, rest: &str) -> String {
        match rest.rfind('@') {
            Some(at) => {
                let userinfo = self.userinfo(&rest[..at]);
                let host_and_rest = self.query(&rest[at + 1..]);
                format!("{userinfo}@{host_and_rest}")
            }
            None => {
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let authority = self.authority_without_userinfo(&rest[..authority_end]);
                format!("{authority}{}", self.query(&rest[authority_end..]))
            }
        }
    }

    /// `user:password` → `user:***`; anything that does not read as a plain
    /// user name is masked whole.
    fn userinfo(&mut self, userinfo: &str) -> String {
        match userinfo.split_once(':') {
            Some((user, password)) if is_plain_user(user) => {
                self.secret(password);
                format!("{user}:{MASK}")
            }
            None if is_plain_user(userinfo) => userinfo.to_string(),
            _ => {
                self.secret(userinfo);
                MASK.to_string()
            }
        }
    }

    /// With no `@`, `host:port`. A "port" that is not a number is what is
    /// left of `user:password` when the `@` was lost, so it is masked.
    fn authority_without_userinfo(&mut self, authority: &str) -> String {
        // The first `:` after an [IPv6] address: a password may hold `:` too.
        let host_end = match authority.starts_with('[') {
            true => authority.find(']').unwrap_or(authority.len()),
            false => 0,
        };
        let port_start = authority[host_end..].find(':').map(|c| host_end + c);
        match port_start {
            Some(colon) if !authority[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                self.secret(&authority[colon + 1..]);
                format!("{}:{MASK}", &authority[..colon])
            }
            _ => authority.to_string(),
        }
    }

    /// Masks `password=…` (any case, percent-encoded keys too) in a query.
    /// A following piece with no `=` is taken as the rest of the password
    /// (an unencoded `&` in it) and masked as well.
    fn query(&mut self, tail: &str) -> String {
        let Some(q) = tail.find('?') else {
            return tail.to_string();
        };
        let mut pieces = Vec::new();
        let mut masking = false;
        for piece in tail[q + 1..].split('&') {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            let key_is_secret = piece.contains('=') && is_secret_key(&percent_decoded(key));
            if key_is_secret {
                self.secret(value);
                pieces.push(format!("{key}={MASK}"));
                masking = true;
            } else if masking && !piece.contains('=') {
                self.secret(piece);
                pieces.push(MASK.to_string());
            } else {
                pieces.push(piece.to_string());
                masking = false;
            }
        }
        format!("{}?{}", &tail[..q], pieces.join("&"))
    }

    /// A libpq `key=value …` string, values optionally single-quoted with
    /// backslash escapes. From the first thing that does not read as
    /// `key=value`, the rest is masked.
    fn key_value(&mut self, conninfo: &str) -> String {
        let bytes = conninfo.as_bytes();
        let mut shown = String::new();
        let mut i = 0;
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            shown.push_str(&conninfo[start..i]);
            if i == bytes.len() {
                return shown;
            }
            let key_start = i;
            while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let key = &conninfo[key_start..i];
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let is_key =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
            if j == bytes.len() || bytes[j] != b'=' || !is_key {
                self.secret(&conninfo[key_start..]);
                shown.push_str(MASK);
                return shown;
            }
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let value_start = j;
            let mut value = String::new();
            if bytes.get(j) == Some(&b'\'') {
                j += 1;
                while j < bytes.len() && bytes[j] != b'\'' {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    let c = conninfo[j..].chars().next().expect("at a char boundary");
                    value.push(c);
                    j += c.len_utf8();
                }
                j = (j + 1).min(bytes.len()); // the closing quote, if any
            } else {
                while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    let c = conninfo[j..].chars().next().expect("at a char boundary");
                    value.push(c);
                    j += c.len_utf8();
                }
            }
            shown.push_str(&conninfo[key_start..value_start]);
            if is_secret_key(key) {
                self.secret(&value);
                self.secret(&conninfo[value_start..j]);
                shown.push_str(MASK);
            } else {
                shown.push_str(&conninfo[value_start..j]);
            }
            i = j;
        }
    }
}

fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `host=… dbname=…` rather than a URL: it starts with a keyword and `=`.
fn looks_like_key_value(text: &str) -> bool {
    let text = text.trim_start();
    let key_end = text
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(text.len());
    key_end > 0 && text[key_end..].trim_start().starts_with('=')
}

fn is_plain_user(user: &str) -> bool {
    !user.contains(|c: char| c.is_whitespace() || "/?#@:=&'\"\\".contains(c))
}

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|secret| key.trim().eq_ignore_ascii_case(secret))
}

/// `%XX` decoded (and `+` left alone, as in userinfo); invalid UTF-8 lossily.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_that_echo_a_connection_string_are_masked() {
        for (typed, secret) in [
            (
                "unexpected argument 'postgres://u:hunter2@h/db' found",
                "hunter2",
            ),
            (
                "unexpected argument '--databse-url=postgresql://u:pa/ss@h/db'",
                "pa/ss",
            ),
            (
                "unexpected argument 'host=h password=s3cret dbname=x'",
                "s3cret",
            ),
            (
                "a value is required for '--database-url <URL>' but none was supplied",
                "none",
            ),
        ] {
            let shown = super::redact_in_message(typed);
            if secret == "none" {
                assert_eq!(shown, typed);
            } else {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    use super::*;

    #[test]
    fn a_url_password_is_masked_and_the_rest_kept() {
        assert_eq!(
            redact("postgres://admin:s3cr%40t@db:5432/app"),
            "postgres://admin:***@db:5432/app"
        );
        assert_eq!(
            redact("postgresql://admin:pw@db/app?sslmode=require"),
            "postgresql://admin:***@db/app?sslmode=require"
        );
        assert_eq!(redact("postgres://admin@db/app"), "postgres://admin@db/app");
        assert_eq!(redact("postgres://db:5432/app"), "postgres://db:5432/app");
    }

    #[test]
    fn unencoded_special_characters_in_a_url_password_are_masked() {
        for (url, shown) in [
            ("postgres://u:p@ss@db/app", "postgres://u:***@db/app"),
            ("postgres://u:pa/ss@db/app", "postgres://u:***@db/app"),
            ("postgres://u:pa?ss@db/app", "postgres://u:***@db/app"),
            ("postgres://u:pa#ss@db/app", "postgres://u:***@db/app"),
            ("postgres://u:pa%ss@db/app", "postgres://u:***@db/app"),
            ("postgres://u:pa ss@db/app", "postgres://u:***@db/app"),
            (
                "postgres://u:a/b?c#d@e f@db:5432/app",
                "postgres://u:***@db:5432/app",
            ),
            ("postgres://u:p%2Fss%40x@db/app", "postgres://u:***@db/app"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn malformed_urls_are_masked_conservatively() {
        for (url, shown) in [
            // bad port, no scheme, a lost `@`
            (
                "postgres://u:pw@db:port/app",
                "postgres://u:***@db:port/app",
            ),
            ("u:secret@db/app", "u:***@db/app"),
            ("postgres:/u:secret@db/app", "postgres:***@db/app"),
            ("postgres://u:secret:x", "postgres://u:***"),
            ("postgres://[::1]:port", "postgres://[::1]:***"),
            ("postgres://[::1]:5432/app", "postgres://[::1]:5432/app"),
            ("postgres://u:secret", "postgres://u:***"),
            ("postgres://u:secret/app", "postgres://u:***/app"),
            ("postgres://u:secret@", "postgres://u:***@"),
            // `@` after the host: everything up to it may be the password
            (
                "postgres://u:pw@db/app?application_name=a@b",
                "postgres://u:***@b",
            ),
            ("postgres://db/app?password=x@y", "postgres://***@y"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn password_query_parameters_are_masked_in_any_case_and_position() {
        for (url, shown) in [
            (
                "postgres://db/app?user=a&password=x&sslmode=require",
                "postgres://db/app?user=a&password=***&sslmode=require",
            ),
            (
                "postgres://db/app?PassWord=x",
                "postgres://db/app?PassWord=***",
            ),
            (
                "postgres://db/app?pass%77ord=x",
                "postgres://db/app?pass%77ord=***",
            ),
            (
                "postgres://u@db/app?sslpassword=k&x=1",
                "postgres://u@db/app?sslpassword=***&x=1",
            ),
            // an unencoded `&` in the password
            (
                "postgres://db/app?password=ab&cd&sslmode=disable",
                "postgres://db/app?password=***&***&sslmode=disable",
            ),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn key_value_connection_strings_have_their_password_masked() {
        for (conninfo, shown) in [
            (
                "host=db password=secret dbname=app",
                "host=db password=*** dbname=app",
            ),
            (
                "host=db password='a b' dbname=app",
                "host=db password=*** dbname=app",
            ),
            (r"password = 'it\'s a b' user=u", "password = *** user=u"),
            ("PASSWORD=secret host=db", "PASSWORD=*** host=db"),
            // unterminated quote: the value runs to the end
            ("host=db password='abc dbname=app", "host=db password=***"),
            // not key=value from here on: masked to the end
            ("host=db password 'a b' dbname=app", "host=db ***"),
        ] {
            assert_eq!(redact(conninfo), shown, "{conninfo}");
        }
    }

    #[test]
    fn no_password_survives_redaction_whatever_it_holds() {
        let passwords = [
            "Mark3r/x",
            "Mark3r?x",
            "Mark3r#x",
            "Mark3r@x",
            "Mark3r%x",
            "Mark3r x",
            "Mark3r:x",
            "Mark3r&x",
            "Mark3r'x",
            "Mark3r%2F",
            "Mark3r=x",
        ];
        let shapes = [
            "postgres://u:{}@db:5432/app",
            "postgresql://u:{}@db/app?sslmode=require",
            "postgres://u:{}@db:port/app",
            "postgres://u:{}",
            "u:{}@db/app",
            "postgres://db/app?password={}",
            "postgres://db/app?sslmode=disable&Password={}&x=1",
            "host=db password='{}' dbname=app",
            "host=db password={} dbname=app",
        ];
        for password in passwords {
            for shape in shapes {
                let conninfo = shape.replace("{}", password);
                let shown = redact(&conninfo);
                assert!(!shown.contains("Mark3r"), "{conninfo} → {shown}");
            }
        }
    }

    #[test]
    fn a_driver_message_quoting_the_password_is_scrubbed() {
        let masked = Masked::new("postgres://u:p%40ssword1@db/app");
        assert_eq!(
            masked.scrub("bad things near p@ssword1 and p%40ssword1"),
            "bad things near *** and ***"
        );
    }

    fn target(conninfo: &str, environment: Option<&str>) -> Result<Target, ConnectError> {
        Target::parse(conninfo, environment)
    }

    #[test]
    fn a_url_that_cannot_be_parsed_is_refused_without_quoting_it() {
        for conninfo in [
            "postgres://postgres:pa/ss@host/db",
            "postgres://u:Mark3r@host:99999/db",
            "host=db password=Mark3r dbname=app",
            "u:Mark3r@db/app",
            "mysql://u:Mark3r@db/app",
        ] {
            let Err(e) = target(conninfo, None) else {
                panic!("{conninfo} was accepted");
            };
            let message = e.to_string();
            assert!(matches!(e, ConnectError::Invalid { .. }), "{message}");
            assert!(
                !message.contains("pa/ss") && !message.contains("Mark3r"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_socket_url_with_a_user_and_no_host_is_refused_with_the_forms_that_work() {
        let Err(ConnectError::Invalid { reason, .. }) =
            target("postgresql://app:s3cret@/db?host=/var/run/postgresql", None)
        else {
            panic!("a user without a host must be refused");
        };
        assert!(reason.contains("a user but no host"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
        // Both forms the message suggests are accepted.
        for url in [
            "postgresql://app@%2Fvar%2Frun%2Fpostgresql/db",
            "postgresql:///db?host=/var/run/postgresql&user=app",
        ] {
            let parsed = target(url, None).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.options.get_username(), "app", "{url}");
            assert_eq!(parsed.options.get_database(), Some("db"), "{url}");
        }
    }

    #[test]
    fn the_connect_timeout_comes_from_the_url_then_the_environment_then_the_default() {
        let timeout = |t: &Target| t.timeout;
        let from_url = target(
            "postgres://u@db/app?connect_timeout=3&sslmode=disable",
            Some("7"),
        )
        .unwrap();
        assert_eq!(timeout(&from_url), Some(Duration::from_secs(3)));
        assert_eq!(from_url.timeout_from, TimeoutFrom::Url);
        let from_environment = target("postgres://u@db/app", Some("7")).unwrap();
        assert_eq!(timeout(&from_environment), Some(Duration::from_secs(7)));
        assert_eq!(from_environment.timeout_from, TimeoutFrom::Environment);
        let default = target("postgres://u@db/app", None).unwrap();
        assert_eq!(timeout(&default), Some(DEFAULT_CONNECT_TIMEOUT));
        let forever = target("postgres://u@db/app?connect_timeout=0", None).unwrap();
        assert_eq!(timeout(&forever), None, "0 waits forever, as in libpq");
        assert!(matches!(
            target("postgres://u@db/app?connect_timeout=soon", None),
            Err(ConnectError::Invalid { .. })
        ));
        assert!(matches!(
            target("postgres://u@db/app", Some("1.5")),
            Err(ConnectError::Invalid { .. })
        ));
    }
}
