//! Secrets recognised by their structure or their label rather than their issuer: JWTs,
//! PEM private keys, passwords inside URLs and connection strings, `password=` pairs and
//! HTTP credential headers.
//!
//! URLs: only the password is masked (`postgres://app:[MASKED:database_url_password]@db`),
//! so a caller still sees which host and user a tool talked to. Userinfo cannot contain
//! `/ ? #` unencoded (RFC 3986), which bounds the match; an unencoded `@` inside the
//! password is tolerated by taking the last `@` before the host, and so is an unencoded
//! `#` after its first character (hand-written `.env` URLs: `postgres://app:p#ss@db`),
//! since a fragment cannot be followed by `@host`.

use super::{Rule, after, rule};

pub const RULES: &[Rule] = &[
    // Header and payload are base64url JSON objects, so both segments start with `eyJ`.
    // A JWT wrapped over lines (a terminal, `fold`, a JSON-escaped `\n`) is followed
    // across a break between runs of 8+ base64url characters; its two dots keep prose
    // out of the header and payload.
    rule!(
        "jwt",
        ["eyJ"],
        r"\beyJ(?:[A-Za-z0-9_\-]{8,}(?:\r?\n|\\n)[ \t]*)*[A-Za-z0-9_\-]{8,}(?:\r?\n|\\n)?[ \t]*\.(?:\r?\n|\\n)?[ \t]*eyJ(?:[A-Za-z0-9_\-]{8,}(?:\r?\n|\\n)[ \t]*)*[A-Za-z0-9_\-]{8,}(?:\r?\n|\\n)?[ \t]*\.(?:[A-Za-z0-9_\-]{8,}(?:(?:\r?\n|\\n)[ \t]*[A-Za-z0-9_\-]{8,})+|[A-Za-z0-9_\-]*)"
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
    // OpenVPN's `--tls-auth` / `--tls-crypt` / `--secret` static key (hex lines).
    rule!(
        "private_key",
        ["OpenVPN Static key"],
        r"-----BEGIN OpenVPN Static key V[0-9]-----(?:(?s:.)*?-----END OpenVPN Static key V[0-9]-----|[0-9a-fA-F\s\\n]*)"
    ),
    rule!(
        "putty_private_key",
        ["PuTTY-User-Key-File-"],
        r"PuTTY-User-Key-File-[0-9]+:(?s:.)*?Private-Lines:\s*[0-9]+\s+(?:[A-Za-z0-9+/=]+\s*)+"
    ),
    rule!(
        "database_url_password",
        ["://"],
        r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb|oracle|couchdb|neo4j(?:\+s)?|nats)://[^\s:@/?#"'<>\[]*:([^\s@/?"'<>\[][^\s/?"'<>]*)@"#
    ),
    rule!(
        "url_password",
        ["://"],
        r#"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:@/?#"'<>\[]*:([^\s@/?#"'<>\[][^\s/?"'<>]*)@"#
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
            // Signed URLs: S3/SigV4 presigned (`X-Amz-Signature`, and the STS session
            // token riding along), GCS V4 (`X-Goog-Signature`). Azure SAS `sig` has its
            // own rule.
            "&x-amz-signature=",
            "?x-amz-signature=",
            "&x-amz-security-token=",
            "?x-amz-security-token=",
            "&x-goog-signature=",
            "?x-goog-signature=",
        ],
        r#"^([^&#\s"'<>\[][^&#\s"'<>]*)"#
    ),
    // ADO.NET / ODBC / JDBC `Password=…;` — the value may hold spaces up to the `;`.
    after!(
        "connection_string_password",
        ["password", "pwd"],
        r#"^\s*=\s*(?:"([^"\r\n]+)"|'([^'\r\n]+)'|([^\s;"'\[][^;\r\n"']*?)\s*;)"#
    ),
    // Every common scheme. Schemes with parameters (`Digest username=…, response=…`,
    // `AWS4-HMAC-SHA256 Credential=…, Signature=…`) are masked to the end of the value;
    // a bare credential (`Authorization: ghp_…`, FCM's `key=…`) without a scheme too.
    after!(
        "authorization_header",
        ["authorization"],
        r#"(?i)^["']?(?:[ \t]*[:=][ \t]*["']?|[ \t]+["'])(?:(?:bearer|basic|token|bot|negotiate|ntlm|dpop|apikey|api-key|sso-key|ssws|splunk|geniekey|zoho-oauthtoken|klaviyo-api-key|jwt|pat|key)[ \t]+([^\s"'\[][^\s"']{5,})|(?:digest|oauth|hawk|aws4-hmac-sha256|signature|vapid|mac)[ \t]+([^\s"'\[][^'\r\n]{5,})|([A-Za-z0-9._~+/\-]{20,}=*))"#
    ),
    after!(
        "bearer_token",
        ["bearer"],
        r"^\s+([A-Za-z0-9._~+/\-]{20,}=*)"
    ),
    // Okta's API token scheme, wherever the header is written.
    after!("bearer_token", ["ssws"], r"^[ \t]+([A-Za-z0-9_\-]{20,})"),
    // A raw HTTP exchange in a tool's output: session cookies are credentials.
    rule!(
        "cookie_header",
        ["cookie"],
        r#"(?im)(?:^|["'])[ \t]*(?:set-)?cookie[ \t]*:[ \t]*([^\s\[][^\r\n"']{7,})"#
    ),
    // Command lines whose password flag is short or glued (`mysql -p'…'`, `-psecret`);
    // long flags (`--password …`) are assignments (see `assign.rs`). A value never starts
    // with `,`: that is help text listing the flag (`-p, --password string`).
    after!(
        "cli_password",
        ["mysql", "mariadb", "mysqldump", "mysqladmin"],
        r#"^[a-z]*[ \t](?:[^\n|;&]*?[ \t])?-p(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["sshpass", "docker login", "az login", "mongosh", "mongo "],
        r#"^[^\n|;&]*?[ \t]-p[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["redis-cli"],
        r#"^[^\n|;&]*?[ \t]-a[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["sqlcmd", "bcp ", "ipmitool", "zip "],
        r#"^[^\n|;&]*?[ \t]-P[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["ldapsearch", "ldapmodify", "ldapadd", "ldapwhoami"],
        r#"^[^\n|;&]*?[ \t]-w[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    // `curl -u user:password`, `--user`, `--proxy-user`; wget's `--http-password` is an
    // assignment.
    after!(
        "cli_password",
        ["curl"],
        r#"^[ \t](?:[^\n|;&]*?[ \t])?(?:-u|-U|--user|--proxy-user)(?:[ \t]+|=)['"]?[^\s:'"]*:([^\s'"\[][^\s'"]*)"#
    ),
    // OpenSSL's `-passin pass:…` / `-passout pass:…`.
    after!(
        "cli_password",
        ["-passin", "-passout", "-pass "],
        r#"^[ \t]*pass:([^\s'"\[][^\s'"]*)"#
    ),
    // `smbclient -U user%password`.
    after!(
        "cli_password",
        ["smbclient"],
        r#"^[^\n|;&]*?[ \t]-U[ \t]*['"]?[^\s%'"]+%([^\s'"\[][^\s'"]*)"#
    ),
    // `~/.gem/credentials` (YAML): an API key per push host, keyed by the host's URL as
    // a Ruby symbol (`:https://gems.example.com: …`), at a line's start.
    after!(
        "host_keyed_token",
        ["\n:http", "\\n:http"],
        r"^s?://[^\s:\\]+(?::[0-9]+)?/?:[ \t]+([A-Za-z0-9_\-]{16,})"
    ),
    // Config formats that separate the password by a space: `.netrc` and Redis. A
    // `.netrc` entry is as often one token a line (`machine h` / `login u` / `password p`)
    // as one line, also JSON-escaped.
    rule!(
        "netrc_password",
        ["machine"],
        r"\bmachine[ \t]+[^\s\\]+(?:(?:\s|\\n)+login[ \t]+[^\s\\]+)?(?:\s|\\n)+password[ \t]+([^\s\[]\S*)"
    ),
    after!(
        "directive_password",
        ["requirepass", "masterauth", "insecure-password"],
        r#"^[ \t]+(?:"([^"\r\n]+)"|([^\s"\[]\S*))"#
    ),
    // `redis-cli CONFIG GET requirepass` answers on the next line.
    after!(
        "directive_password",
        ["\"requirepass\"", "\"masterauth\""],
        r#"^\r?\n2\) "([^"\r\n]+)""#
    ),
    // A password piped into `sudo -S`.
    rule!(
        "cli_password",
        ["sudo -S"],
        r#"\becho[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"|\[]+))[ \t]*\|[ \t]*sudo[ \t]+(?:-[A-Za-z]+[ \t]+)*-S\b"#
    ),
    // More short password flags: `7z a -pSECRET`, `ssh-keygen -N '…'`, SNMP's community
    // string (`snmpwalk -c …`, v1/v2c's only credential), `sqlplus user/password@db`,
    // PowerShell's `ConvertTo-SecureString "…" -AsPlainText`.
    // Keyed with the command letter: a bare `7z ` is every `…:07Z ` timestamp.
    after!(
        "cli_password",
        [
            "7z a ", "7z x ", "7z e ", "7z t ", "7z u ", "7za a ", "7za x ", "7za e ", "7zz a ",
            "7zz x ",
        ],
        r#"^(?:[^\n|;&]*?[ \t])?-p(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["ssh-keygen"],
        r#"^[^\n|;&]*?[ \t]-N[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        [
            "snmpwalk",
            "snmpget",
            "snmpbulkwalk",
            "snmpset",
            "snmpgetnext",
            "snmptable"
        ],
        r#"^[^\n|;&]*?[ \t]-c[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[,][^\s'"]*))"#
    ),
    after!(
        "cli_password",
        ["sqlplus", "rman ", "expdp ", "impdp "],
        r#"^[ \t]*(?:-[A-Za-z]+[ \t]+)*(?:target[ \t]+)?['"]?[A-Za-z0-9_$#]+/([^\s@/'"\[][^\s@'"]*)@"#
    ),
    after!(
        "cli_password",
        ["convertto-securestring"],
        r#"(?i)^[ \t]+(?:-String[ \t]+)?(?:'([^'\r\n]+)'|"([^"\r\n]+)")[ \t]+-AsPlainText"#
    ),
    // A (user, password) pair of literals given to a credential constructor.
    after!(
        "cli_password",
        [
            "NetworkCredential(",
            "PasswordAuthentication(",
            "UsernamePasswordCredentials(",
            "HTTPBasicAuth(",
            "HTTPDigestAuth(",
            "BasicAuth(",
            "auth=(",
        ],
        r#"^[ \t]*(?:"[^"\r\n]*"|'[^'\r\n]*')[ \t]*,[ \t]*(?:"([^"\r\n]+)"|'([^'\r\n]+)')"#
    ),
    // Mail and file transfer sessions printed by a client (`curl -v`, `openssl s_client`,
    // a debug log): SMTP `AUTH PLAIN base64(\0user\0password)`, FTP/POP3 `PASS …`,
    // IMAP `tag LOGIN user password`. Upper case, at a line's start, to spare prose.
    rule!(
        "protocol_password",
        ["AUTH PLAIN "],
        r"(?m)(?:^|[ \t])AUTH PLAIN ([A-Za-z0-9+/]{8,}={0,2})\r?$"
    ),
    rule!(
        "protocol_password",
        ["PASS "],
        r"(?m)^(?:[A-Z]: |> |-> )?PASS ([^\s\[]\S*)\r?$"
    ),
    rule!(
        "protocol_password",
        [" LOGIN "],
        r#"(?m)^(?:[A-Z]: |> )?[A-Za-z0-9.]{1,12} LOGIN (?:"[^"\r\n]*"|[^\s"]+) (?:"([^"\r\n]+)"|([^\s"\[]+))\r?$"#
    ),
    // Passwords given as a positional argument: `htpasswd -b[c] [file] user password`,
    // `rabbitmqctl add_user|change_password user password`, Windows'
    // `net use \\srv\share /user:DOMAIN\user password`.
    after!(
        "cli_password",
        ["htpasswd"],
        r#"^(?:[ \t]+-[A-Za-z]+)*?[ \t]+-[A-Za-z]*b[A-Za-z]*(?:[ \t]+-[A-Za-z]+)*(?:[ \t]+[^\s\-<>|;&][^\s<>|;&]*){1,2}[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\[<>|;&][^\s'"<>|;&]*))"#
    ),
    after!(
        "cli_password",
        ["rabbitmqctl"],
        r#"^[^\n|;&]*?[ \t](?:add_user|change_password)[ \t]+['"]?[^\s'"]+['"]?[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-\[<>|;&][^\s'"<>|;&]*))"#
    ),
    after!(
        "cli_password",
        ["net use"],
        r#"(?i)^[^\n|;&]*?[ \t]/user:\S+[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"/\[*<>|;&][^\s'"<>|;&]*))"#
    ),
    // A password piped into a command that reads it from stdin (`docker`, `helm
    // registry`, `podman`, `oras login --password-stdin`) or into `chpasswd` as
    // `user:password`.
    rule!(
        "cli_password",
        ["password-stdin"],
        r#"\b(?:echo|printf)[ \t]+(?:-[a-z]+[ \t]+)?(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"|\[]+))[ \t]*\|[ \t]*[^\n|]*?--password-stdin\b"#
    ),
    rule!(
        "cli_password",
        ["chpasswd"],
        r#"\b(?:echo|printf)[ \t]+['"]?[^\s:'"|]+:([^\s'"|\[]+)['"]?[ \t]*\|[ \t]*(?:sudo[ \t]+)?chpasswd\b"#
    ),
    // SQL: MySQL's `IDENTIFIED BY '…'` (`CREATE USER`, `ALTER USER`, `GRANT`).
    after!(
        "sql_password",
        ["identified"],
        r#"(?i)^[ \t]+(?:with[ \t]+[A-Za-z0-9_]+[ \t]+)?by[ \t]+(?:'([^'\r\n]+)'|"([^"\r\n]+)")"#
    ),
    // PostgreSQL's password file: `host:port:database:user:password`, one per line.
    // Port digits or `*`; database and user not all digits (`/etc/shadow`'s
    // `root:*:19000:0:99999:7:::` is no such line). A line may open or close a quoted
    // string (`output: "db:5432:…\n…"` read unescaped). The keywords are the ports
    // PostgreSQL and what speaks its protocol listen on (a second cluster's 5433…, 15432
    // and 25432 of port-shifted containers, PgBouncer 6432, Supavisor 6543, Redshift 5439,
    // DigitalOcean 25060, CockroachDB 26257) and the `*` wildcard; a line on another port
    // is not found.
    rule!(
        "pgpass_password",
        [
            "5432:", "5433:", "5434:", "5435:", "5439:", "6432:", "6543:", "25060:", "26257:",
            ":*:"
        ],
        r#"(?m)(?:^|["'])[ \t]*[A-Za-z0-9_.\-*]+:(?:[0-9]{2,5}|\*):[^:\s]*[^:\s0-9][^:\s]*:[^:\s]*[^:\s0-9][^:\s]*:([^\s\["'][^\s"']*)[ \t]*\r?(?:$|["'])"#
    ),
    // The private parts of a JSON Web Key (`d`; `k` of a symmetric key).
    after!(
        "jwk_private_key",
        ["\"d\"", "\"k\""],
        r#"^[ \t]*:[ \t]*"([A-Za-z0-9_\-]{40,})""#
    ),
    // Password hashes (`/etc/shadow`, database dumps): crackable offline, so not released.
    rule!(
        "password_hash",
        ["$6$", "$5$", "$y$", "$2a$", "$2b$", "$2y$", "$argon2"],
        r"\$(?:6|5|y|2[aby]|argon2(?:id|i|d)\$v=[0-9]+)\$[./A-Za-z0-9$=,]{20,}"
    ),
    // Older crypt(3) and LDAP/htpasswd schemes: MD5-crypt `$1$`, Apache `$apr1$`, and
    // `{SHA}`/`{SSHA}`/`{SSHA512}` base64 digests (`.htpasswd`, LDAP `userPassword`).
    rule!(
        "password_hash",
        ["$1$", "$apr1$"],
        r"\$(?:1|apr1)\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}"
    ),
    rule!(
        "password_hash",
        [
            "{SHA}",
            "{SSHA}",
            "{SHA256}",
            "{SSHA256}",
            "{SHA512}",
            "{SSHA512}"
        ],
        r"\{S?SHA(?:256|512)?\}[A-Za-z0-9+/]{20,}={0,2}"
    ),
    // Oracle's thin JDBC URL carries `user/password@host`.
    rule!(
        "jdbc_password",
        ["thin:"],
        r#"(?i)jdbc:oracle:thin:[A-Za-z0-9_$#"]+/([^@\s/"'\[][^@\s/"']*)@"#
    ),
];
