//! Failed-authentication recognition in free-text log lines (sshd, PAM, web servers, databases,
//! applications), with the offending address and user pulled from the line.

use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

/// Phrases that mark a failed authentication, matched case-insensitively in one pass.
const FAILURE_PHRASES: &[&str] = &[
    // sshd
    "failed password",
    "failed keyboard-interactive",
    "failed none for",
    "failed hostbased",
    "failed unknown for",
    "invalid user",
    "illegal user",
    "not allowed because",
    "root login refused",
    "maximum authentication attempts exceeded",
    "too many authentication failures",
    "disconnected from authenticating user",
    "connection closed by authenticating user",
    "connection reset by authenticating user",
    "no supported authentication methods",
    "no authentication methods available",
    "jschexception: auth fail",
    "user not known to the underlying authentication module",
    // sshd pre-authentication probes: a client that never tries to log in properly
    "did not receive identification string",
    "bad protocol version identification",
    "unable to negotiate with",
    "invalid protocol identifier",
    "timeout before authentication for",
    "bye bye [preauth]",
    "thank you for playing",
    // Apache authentication and authorisation
    "authorization failure",
    "wrong authentication scheme",
    "client denied by server configuration",
    "realm mismatch",
    "digest: invalid nonce",
    "unknown algorithm `",
    "invalid qop `",
    // PAM and generic
    "authentication failure",
    "authentication error",
    "authentication failed",
    "auth failed",
    "failed to authenticate",
    // applications and databases
    "invalid password",
    "incorrect password",
    "wrong password",
    "bad password",
    "password mismatch",
    "login failed",
    "failed login",
    "login failure",
    "invalid credentials",
    "bad credentials",
    "access denied for user",
    "password authentication failed",
];

/// Phrases that make a line not count even when a failure phrase is present: successes, and
/// lines that only repeat a failure sshd already logged (PAM's copy of it, the pre-auth echo).
const EXCLUDE_PHRASES: &[&str] = &[
    "accepted password",
    "accepted publickey",
    "accepted keyboard-interactive",
    "session opened",
    "close session",
    "pam_unix(sshd:auth)",
    "input_userauth_request",
    "no user/password was provided",
    "account is locked",
    // Summaries of failures already counted line by line.
    "disconnecting: too many authentication failures",
    "disconnecting invalid user",
];

/// Keywords that introduce the remote address; the first candidate after one of them wins
/// when no sshd `port N` suffix settles it.
const ADDRESS_KEYWORDS: &[&str] = &[
    "from ",
    "rhost=",
    "rip=",
    "client ",
    "client: ",
    "[client ",
    "host=",
    "remote_addr=",
];

/// A failed authentication seen in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailure<'a> {
    /// The offending address, when the line names one.
    pub ip: Option<&'a str>,
    /// The user the attempt was for, when the line names one.
    pub user: Option<&'a str>,
}

/// Compiled failure matchers.
#[derive(Debug)]
pub struct AuthMatcher {
    phrases: AhoCorasick,
    excludes: AhoCorasick,
    user_not_found: Regex,
    user: Regex,
}

impl AuthMatcher {
    /// Compile the matchers with configured extra failure phrases.
    ///
    /// # Errors
    /// A message when a phrase list does not compile.
    pub fn try_new(extra_phrases: &[String]) -> Result<AuthMatcher, String> {
        let ci = |pats: Vec<String>| -> Result<AhoCorasick, String> {
            // Only `is_match` is asked, so standard semantics (stop at the first match) and a
            // full DFA: a few hundred patterns make a DFA of well under a megabyte.
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(pats)
                .map_err(|e| e.to_string())
        };
        let phrases = FAILURE_PHRASES
            .iter()
            .map(|s| s.to_string())
            .chain(extra_phrases.iter().cloned())
            .collect();
        Ok(AuthMatcher {
            phrases: ci(phrases)?,
            excludes: ci(EXCLUDE_PHRASES.iter().map(|s| s.to_string()).collect())?,
            user_not_found: Regex::new(
                r#"(?i)\buser ("[^"]*"|\S*) ?:? ?(was )?not found\b|\buser \S+ in realm .{0,80} not found"#,
            )
                .map_err(|e| e.to_string())?,
            user: Regex::new(
                r#"(?i)(?:invalid user|illegal user|authenticating user|\bfor user|(?:failed|failure|error) (?:\S+ )?for(?: invalid user| illegal user)?|\buser=<?|\buser|\blogin=|\baccount) ?['"]?([^\s"'<>,;:()\[\]]+)"#,
            )
            .map_err(|e| e.to_string())?,
        })
    }

    /// The failed authentication this line reports, if any.
    pub fn classify<'a>(&self, message: &'a str) -> Option<AuthFailure<'a>> {
        let failed = self.phrases.is_match(message)
            || (memchr::memmem::find(message.as_bytes(), b"not found").is_some()
                && self.user_not_found.is_match(message));
        if !failed || self.excludes.is_match(message) {
            return None;
        }
        Some(AuthFailure {
            ip: find_offender_ip(message),
            user: self.find_user(message),
        })
    }

    fn find_user<'a>(&self, message: &'a str) -> Option<&'a str> {
        let caps = self.user.captures(message)?;
        let user = caps.get(1)?.as_str();
        // `Invalid user  from 1.2.3.4` has an empty user name: the next word is not it.
        (!user.eq_ignore_ascii_case("from") && !user.is_empty()).then_some(user)
    }
}

/// A token as an IP address: plain, IPv4-mapped IPv6 (`::ffff:1.2.3.4`), with a `:port`
/// suffix, or IPv4 with zero-padded octets (`192.030.0.6`).
pub fn parse_ip_token(token: &str) -> Option<&str> {
    let t = token.trim_end_matches(['.', ':']);
    let t = t
        .strip_prefix("::ffff:")
        .or_else(|| t.strip_prefix("::FFFF:"))
        .unwrap_or(t);
    if t.len() < 2 || !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if t.parse::<IpAddr>().is_ok() || is_padded_ipv4(t) {
        return Some(t);
    }
    if t.bytes().filter(|&b| b == b':').count() == 1 {
        let host = &t[..t.find(':')?];
        if host.parse::<std::net::Ipv4Addr>().is_ok() || is_padded_ipv4(host) {
            return Some(host);
        }
    }
    None
}

fn is_padded_ipv4(s: &str) -> bool {
    let mut parts = 0;
    for p in s.split('.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if p.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    parts == 4
}

fn is_token_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '[' | ']' | '(' | ')' | '<' | '>' | ',' | ';' | '=' | '"' | '\'' | '@' | '/'
        )
}

/// The offending address in a failure line. sshd ends its lines with
/// `from <addr> port <n> [sshN][: details| [preauth]]`, and a user name can itself contain
/// `from 1.2.3.4`, so an address followed by that suffix wins; then the first address after a
/// keyword such as `from` or `rhost=`; then the first address at all.
pub fn find_offender_ip(message: &str) -> Option<&str> {
    let mut first_any: Option<&str> = None;
    let mut first_keyword: Option<&str> = None;
    let mut start = None;
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    for (i, c) in message.char_indices() {
        if is_token_delimiter(c) {
            if let Some(s) = start.take() {
                tokens.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        tokens.push((s, message.len()));
    }
    let mut last_client_field: Option<&str> = None;
    for &(s, e) in &tokens {
        let Some(ip) = parse_ip_token(&message[s..e]) else {
            continue;
        };
        if has_sshd_port_suffix(&message[e..]) {
            return Some(ip);
        }
        // nginx appends `, client: <addr>, server: ...` after the (attacker-controlled)
        // text, so the last such field is the real one.
        if message[..s].ends_with(", client: ") {
            last_client_field = Some(ip);
        }
        first_any.get_or_insert(ip);
        if first_keyword.is_none() {
            let before = &message[..s];
            if ADDRESS_KEYWORDS.iter().any(|k| {
                before.len() >= k.len()
                    && before.as_bytes()[before.len() - k.len()..]
                        .eq_ignore_ascii_case(k.as_bytes())
            }) {
                first_keyword = Some(ip);
            }
        }
    }
    if last_client_field.is_some() {
        return last_client_field;
    }
    // When the line says `from <host name>`, an address elsewhere (`via 10.0.0.1`) is the
    // local end, not the offender.
    let from_name = memchr::memmem::find_iter(message.as_bytes(), b" from ").any(|i| {
        let rest = &message[i + 6..];
        let tok = rest.split(is_token_delimiter).next().unwrap_or("");
        !tok.is_empty() && parse_ip_token(tok).is_none() && tok.contains('.')
    });
    if from_name {
        return first_keyword;
    }
    first_keyword.or(first_any)
}

/// ` port 22`, then an optional ` ssh2`, then the end, `:` or ` [preauth]`.
fn has_sshd_port_suffix(rest: &str) -> bool {
    let Some(r) = rest.strip_prefix(" port ") else {
        return false;
    };
    let digits = r.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let mut r = &r[digits..];
    if let Some(after) = r.strip_prefix(" ssh") {
        r = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let r = r.trim_end();
    r.is_empty() || r.starts_with(':') || r.trim_start().starts_with("[preauth]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> AuthMatcher {
        AuthMatcher::try_new(&[]).expect("built-in phrases compile")
    }

    #[test]
    fn sshd_failures_name_the_offender() {
        let m = matcher();
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2",
                Some("194.117.26.69"),
                Some("ROOT"),
            ),
            (
                "Failed password for root from 192.0.2.1 port 56502 ssh2",
                Some("192.0.2.1"),
                Some("root"),
            ),
            (
                "Failed password for invalid user from 10.10.1.1 from 127.0.0.1 port 58946 ssh2",
                Some("127.0.0.1"),
                None,
            ),
            (
                "Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
                Some("127.0.0.1"),
                Some("test"),
            ),
            (
                "ROOT LOGIN REFUSED FROM ::ffff:1.2.3.4",
                Some("1.2.3.4"),
                None,
            ),
            (
                "Connection closed by authenticating user test 127.0.0.1 192.0.2.11 port 46039 [preauth]",
                Some("192.0.2.11"),
                Some("test"),
            ),
            (
                "Invalid user  from 192.0.2.68 port 34916",
                Some("192.0.2.68"),
                None,
            ),
            (
                "imap-login: Disconnected (auth failed, 1 attempts): user=<admin@example.com>, method=PLAIN, rip=192.0.2.1, lip=10.0.0.1",
                Some("192.0.2.1"),
                Some("admin@example.com"),
            ),
            (
                "error: PAM: Authentication failure for test-ipv6 from 2606:2800:220:1:248:1893:25c8:1946",
                Some("2606:2800:220:1:248:1893:25c8:1946"),
                Some("test-ipv6"),
            ),
        ];
        for (line, ip, user) in cases {
            let f = m.classify(line);
            assert!(f.is_some(), "{line:?} is a failure");
            let f = f.expect("checked above");
            assert_eq!(f.ip, *ip, "{line}");
            assert_eq!(f.user, *user, "{line}");
        }
    }

    #[test]
    fn successes_and_echoes_are_not_failures() {
        let m = matcher();
        for line in [
            "Accepted password for rda from 192.0.2.113 port 52100 ssh2",
            "pam_unix(sshd:session): session opened for user rda by (uid=0)",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.112  user=root",
            "input_userauth_request: invalid user root [preauth]",
            "Connection from 192.0.2.5",
            "Close session: user ansible from 192.168.1.1 port 34928 id 0",
            "GET /api/items 200",
            "",
        ] {
            assert_eq!(m.classify(line), None, "{line:?}");
        }
    }

    #[test]
    fn web_and_app_failures() {
        let m = matcher();
        let f = m.classify("[error] [client 194.228.20.113] user dsfasdf not found: /");
        assert_eq!(f.and_then(|f| f.ip), Some("194.228.20.113"));
        let f =
            m.classify(r#"user "bob" was not found in "/etc/nginx/.htpasswd", client: 10.1.2.3"#);
        assert_eq!(f.and_then(|f| f.ip), Some("10.1.2.3"));
        let f = m.classify("login failed: invalid password for user alice from 10.0.0.9");
        assert_eq!(
            f.map(|f| (f.ip, f.user)),
            Some((Some("10.0.0.9"), Some("alice")))
        );
        let f = m.classify("Access denied for user 'root'@'10.0.0.7' (using password: YES)");
        assert_eq!(
            f.map(|f| (f.ip, f.user)),
            Some((Some("10.0.0.7"), Some("root")))
        );
    }

    #[test]
    fn ip_tokens() {
        assert_eq!(parse_ip_token("192.030.0.6"), Some("192.030.0.6"));
        assert_eq!(parse_ip_token("10.0.0.1:8080"), Some("10.0.0.1"));
        assert_eq!(parse_ip_token("::ffff:1.2.3.4"), Some("1.2.3.4"));
        assert_eq!(
            parse_ip_token("aaaa:bbbb:cccc:1234::1:1"),
            Some("aaaa:bbbb:cccc:1234::1:1")
        );
        assert_eq!(parse_ip_token("example.com"), None);
        assert_eq!(parse_ip_token("12345"), None);
        assert_eq!(parse_ip_token("ssh2"), None);
    }
}
