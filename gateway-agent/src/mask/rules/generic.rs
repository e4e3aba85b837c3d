//! Secrets recognised by their structure or their label rather than their issuer: JWTs,
//! PEM private keys, passwords inside URLs and connection strings, `password=` pairs and
//! HTTP credential headers.
//!
//! URLs: only the password is masked (`postgres://app:[MASKED:database_url_password]@db`),
//! so a caller still sees which host and user a tool talked to. Userinfo cannot contain
//! `/ ? #` unencoded (RFC 3986), which bounds the match; an unencoded `@` inside the
//! password is tolerated by taking the last `@` before the host.

use super::{Rule, after, rule};

pub const RULES: &[Rule] = &[
    // Header and payload are base64url JSON objects, so both segments start with `eyJ`.
    rule!(
        "jwt",
        ["eyJ"],
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
    ),
    // The whole block, BEGIN to END (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP … BLOCK, or
    // plain PKCS#8). A block cut off before its END line is masked to the end of its
    // base64 body; `\` is in that class so a block inside a JSON-escaped string (`\n`)
    // is not cut short.
    rule!(
        "private_key",
        ["PRIVATE KEY"],
        r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:(?s:.)*?-----END[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,\\\-]*)"
    ),
    rule!(
        "putty_private_key",
        ["PuTTY-User-Key-File-"],
        r"PuTTY-User-Key-File-[0-9]+:(?s:.)*?Private-Lines:\s*[0-9]+\s+(?:[A-Za-z0-9+/=]+\s*)+"
    ),
    rule!(
        "database_url_password",
        ["://"],
        r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb|oracle|couchdb|neo4j(?:\+s)?|nats)://[^\s:@/?#"'<>\[]*:([^\s@/?#"'<>\[][^\s/?#"'<>]*)@"#
    ),
    rule!(
        "url_password",
        ["://"],
        r#"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:@/?#"'<>\[]*:([^\s@/?#"'<>\[][^\s/?#"'<>]*)@"#
    ),
    // A credential in a query string: the keyword is the parameter with its delimiter.
    after!(
        "url_query_secret",
        [
            "?password=",
            "&password=",
            "?passwd=",
            "&passwd=",
            "?pwd=",
            "&pwd=",
            "?secret=",
            "&secret=",
            "?client_secret=",
            "&client_secret=",
            "?token=",
            "&token=",
            "?access_token=",
            "&access_token=",
            "?refresh_token=",
            "&refresh_token=",
            "?id_token=",
            "&id_token=",
            "?api_key=",
            "&api_key=",
            "?apikey=",
            "&apikey=",
            "?key=",
            "&key=",
        ],
        r#"^([^&#\s"'<>\[][^&#\s"'<>]*)"#
    ),
    // ADO.NET / ODBC / JDBC `Password=…;` — the value may hold spaces up to the `;`.
    after!(
        "connection_string_password",
        ["password", "pwd"],
        r#"^\s*=\s*(?:"([^"\r\n]+)"|'([^'\r\n]+)'|([^\s;"'\[][^;\r\n"']*?)\s*;)"#
    ),
    after!(
        "authorization_header",
        ["authorization"],
        r#"(?i)^["']?\s*[:=]\s*["']?(?:bearer|basic|token|bot|negotiate|ntlm|dpop|apikey|sso-key)\s+([^\s"'\[][^\s"']{7,})"#
    ),
    after!(
        "bearer_token",
        ["bearer"],
        r"^\s+([A-Za-z0-9._~+/\-]{20,}=*)"
    ),
    // A raw HTTP exchange in a tool's output: session cookies are credentials.
    rule!(
        "cookie_header",
        ["cookie"],
        r"(?im)^[ \t]*(?:set-)?cookie[ \t]*:[ \t]*([^\s\[][^\r\n]{7,})"
    ),
    // `password: hunter2`, `"api_key": "…"`, `export GITHUB_TOKEN=…` in free text: the
    // label is any keyword (so `GITHUB_TOKEN` is caught through `token`). An unquoted
    // value must be 6+ characters so prose like "the secret: true" survives.
    after!(
        "password_assignment",
        [
            "password",
            "passwd",
            "passphrase",
            "pwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "api-key",
            "access_key",
            "access-key",
            "accesskey",
            "secret_key",
            "secret-key",
            "secretkey",
            "private_key",
            "private-key",
            "privatekey",
        ],
        r#"^["']?\s*[:=]\s*(?:"([^"\r\n]+)"|'([^'\r\n]+)'|([^\s"',;&<>\[][^\s"',;&<>]{5,}))"#
    ),
];
