//! Classes the blind batches (corpus `batch` s7a, s7b, s7c) found missed or mangled, one test
//! per class: each fails without its fix.

use super::super::{
    keys::SensitiveKeys,
    values::{is_not_a_secret, looks_generated},
};
use super::masked_text;

fn assert_masks(cases: &[(&str, &str)]) {
    for (text, want) in cases {
        assert_eq!(masked_text(text).0, *want, "{text}");
    }
}

fn assert_unchanged(texts: &[&str]) {
    for text in texts {
        assert_eq!(masked_text(text).0, *text);
    }
}

#[test]
fn weak_names_hold_a_secret_only_when_the_value_looks_generated() {
    let keys = SensitiveKeys::new(&[]).unwrap();
    for key in [
        "SENDGRID_KEY",
        "redis_auth",
        "mapsKey",
        "tokens",
        "secrets",
        "api_tokens",
    ] {
        assert!(keys.is_weak(key) || keys.is_sensitive(key), "{key}");
    }
    for key in [
        "key",
        "auth",
        "public_key",
        "cache_key",
        "sort_key",
        "keyboard",
        "author",
        "vapid_public_key",
        "stripe_publishable_key",
        "recaptchaSiteKey",
        "dedup_key",
    ] {
        assert!(!keys.is_weak(key), "{key}");
    }
    for value in [
        "OxpwHh1CGduuuq5fLxHbYBSXr8XssvGe",
        "tHduLC6tgBxFyBWwXUAdP6wURJplFtw0",
        "9f86d081884c7d659a2feaa0c55ad015",
    ] {
        assert!(looks_generated(value), "{value}");
    }
    for value in [
        "users:v2:list",
        "4096",
        "caching_sha2_password",
        "db_password",
        "uploads/2026/Report1.pdf",
        "123e4567-e89b-12d3-a456-426614174000",
        "https://example.com/Key1234567890",
        "CamelCaseIdentifierName1",
    ] {
        assert!(!looks_generated(value), "{value}");
    }
    assert_masks(&[
        (
            "SENDGRID_KEY=OxpwHh1CGduuuq5fLxHbYBSXr8XssvGe\n",
            "SENDGRID_KEY=[MASKED:password_assignment]\n",
        ),
        (
            "REDIS_AUTH=tHduLC6tgBxFyBWwXUAdP6wURJplFtw0",
            "REDIS_AUTH=[MASKED:password_assignment]",
        ),
        (
            "tokens:\n  - 6Xba9awUhWzVQzS9szYBcFASsMupb7OW\n  - zlaBi0SH8VXDyswH7CLI2K5NzRdwfTor\n",
            "tokens:\n  - [MASKED:password_assignment]\n  - [MASKED:password_assignment]\n",
        ),
    ]);
    assert_unchanged(&[
        "CACHE_KEY=users:v2:list\n",
        "max_tokens: 4096\n",
        "secrets:\n  - db_password\n  - api_key\n",
        "default_auth=caching_sha2_password\n",
        "PUBLIC_KEY=MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE\n",
        "tokens: [\"hello\", \"world\"]\n",
    ]);
}

#[test]
fn pre_shared_keys_are_secret() {
    let keys = SensitiveKeys::new(&[]).unwrap();
    for key in ["psk", "wpa_psk", "PresharedKey"] {
        assert!(keys.is_sensitive(key), "{key}");
    }
    assert_masks(&[(
        "network={\n    ssid=\"Corp\"\n    psk=\"1DpGFBrHDY9?4&\"\n}\n",
        "network={\n    ssid=\"Corp\"\n    psk=\"[MASKED:password_assignment]\"\n}\n",
    )]);
}

#[test]
fn a_yaml_block_scalar_under_a_sensitive_key_is_masked_to_its_end() {
    assert_masks(&[
        (
            "webhook:\n  secret: |\n    h4hGYO+tQT9QhSjihYnKkKJOv78u88AG\n    /STbR4a8vJTPg0XllI8k86N4ZLvuAteC\n  url: https://ci\n",
            "webhook:\n  secret: |\n    [MASKED:password_assignment]\n  url: https://ci\n",
        ),
        (
            "private_key: >- # pasted\r\n  Zq8rT5kW2xYv\r\nnext: 1\r\n",
            "private_key: >- # pasted\r\n  [MASKED:password_assignment]\r\nnext: 1\r\n",
        ),
    ]);
    // Not a block scalar: `|` followed by more text on its line.
    assert_unchanged(&["password: | not a header\n  x\n", "token: |\nnext: 1\n"]);
}

#[test]
fn prose_names_a_password_with_is_colon_or_a_quoted_word() {
    assert_masks(&[
        (
            "Your temporary password is: SemfhL0t7@4&\nIt expires.",
            "Your temporary password is: [MASKED:password_assignment]\nIt expires.",
        ),
        (
            "Use the password \"gkccdmE1m@6%\" to log in.",
            "Use the password \"[MASKED:password_assignment]\" to log in.",
        ),
        (
            "ALTER ROLE app WITH LOGIN PASSWORD 'Zq8rT5kW2x';",
            "ALTER ROLE app WITH LOGIN PASSWORD '[MASKED:password_assignment]';",
        ),
    ]);
    assert_unchanged(&[
        "Set the password \"field\" in the form.",
        "the password \"is required\" message",
        "password 'xxxxxxxx' is shown",
    ]);
}

#[test]
fn terraform_sensitive_outputs_are_masked_in_text() {
    assert_masks(&[(
        "{\"db_conn\": {\n  \"value\": \"8FHJ3ujv3ArZnSd?9*\",\n  \"type\": \"string\",\n  \"sensitive\": true\n}}",
        "{\"db_conn\": {\n  \"value\": \"[MASKED:password_assignment]\",\n  \"type\": \"string\",\n  \"sensitive\": true\n}}",
    )]);
    assert_unchanged(&[
        "{\"region\": {\"value\": \"eu-west-1\", \"type\": \"string\", \"sensitive\": false}}",
        "Header names are case-insensitive; values are sensitive: true story",
    ]);
}

#[test]
fn positional_and_piped_cli_passwords_are_masked() {
    assert_masks(&[
        (
            "htpasswd -b -c /etc/nginx/.htpasswd admin zCLpLbyTp*2#\n",
            "htpasswd -b -c /etc/nginx/.htpasswd admin [MASKED:cli_password]\n",
        ),
        (
            "htpasswd -nb admin zCLpLbyTp2 > users",
            "htpasswd -nb admin [MASKED:cli_password] > users",
        ),
        (
            "rabbitmqctl add_user admin bgtwfifPR^1^\n",
            "rabbitmqctl add_user admin [MASKED:cli_password]\n",
        ),
        (
            "net use \\\\fs01\\share /user:CORP\\svc h7R4eKJvj*7? /persistent:no",
            "net use \\\\fs01\\share /user:CORP\\svc [MASKED:cli_password] /persistent:no",
        ),
        (
            "echo \"Ka9YT7AR80Gg3Ruxt1al\" | docker login ghcr.io -u ci --password-stdin",
            "echo \"[MASKED:cli_password]\" | docker login ghcr.io -u ci --password-stdin",
        ),
        (
            "echo 'deploy:Zq8rT5kW2x' | sudo chpasswd",
            "echo 'deploy:[MASKED:cli_password]' | sudo chpasswd",
        ),
        (
            "CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY 'Zq8!rT5kW';",
            "CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY '[MASKED:sql_password]';",
        ),
    ]);
    assert_unchanged(&[
        "htpasswd -c /etc/nginx/.htpasswd admin",
        "rabbitmqctl list_users",
        "net use \\\\fs01\\share /user:CORP\\svc *",
        "echo \"$TOKEN\" | docker login ghcr.io -u ci --password-stdin",
        "docker login --password-stdin < token.txt",
    ]);
}

#[test]
fn pgpass_lines_mask_the_password_field() {
    assert_masks(&[
        (
            "db.internal:5432:sales:report:nu2nqgPGR10#8*\n*:*:*:replication:Zq8rT5kW\n",
            "db.internal:5432:sales:report:[MASKED:pgpass_password]\n*:*:*:replication:[MASKED:pgpass_password]\n",
        ),
        (
            "output: \"db:5432:app:app:NbvQYuJhApy_5#\\n\"",
            "output: \"db:5432:app:app:[MASKED:pgpass_password]\\n\"",
        ),
    ]);
    assert_unchanged(&[
        "root:*:19000:0:99999:7:::\n",
        "listening on 0.0.0.0:5432:ready\n",
    ]);
}

#[test]
fn pgpass_lines_on_the_ports_of_poolers_and_shifted_clusters_are_masked_too() {
    assert_masks(&[
        (
            "pooler.supabase.com:6543:postgres:postgres.abc:nu2nqgPGR10#8*\n",
            "pooler.supabase.com:6543:postgres:postgres.abc:[MASKED:pgpass_password]\n",
        ),
        (
            "localhost:15432:app:app:Zq8rT5kW2x\n",
            "localhost:15432:app:app:[MASKED:pgpass_password]\n",
        ),
        (
            "warehouse.example.redshift.amazonaws.com:5439:dev:awsuser:Zq8rT5kW2x\n",
            "warehouse.example.redshift.amazonaws.com:5439:dev:awsuser:[MASKED:pgpass_password]\n",
        ),
        (
            "db-postgresql-fra1-123.db.ondigitalocean.com:25060:defaultdb:doadmin:Zq8rT5kW2x\n",
            "db-postgresql-fra1-123.db.ondigitalocean.com:25060:defaultdb:doadmin:[MASKED:pgpass_password]\n",
        ),
    ]);
    assert_unchanged(&["12:15432:00 build 6543: ok\n"]);
}

/// Terraform says itself which attributes are sensitive; `result` is a secret by no name.
#[test]
fn attributes_terraform_marks_sensitive_are_masked_and_the_rest_kept() {
    let masker = super::masker();
    // A state file (format 4): paths into the instance's `attributes`.
    let mut state = serde_json::json!({"version": 4, "resources": [{
        "mode": "managed", "type": "random_password", "name": "db",
        "instances": [{
            "schema_version": 3,
            "attributes": {"id": "none", "length": 24, "special": true,
                           "result": "k7#Vb2!qLm9zR4tWx8pN3sYd", "keepers": {"rotation": "2026-11"}},
            "sensitive_attributes": [[{"type": "get_attr", "value": "result"}]]
        }]
    }]});
    masker.mask_value(&mut state);
    let attributes = &state["resources"][0]["instances"][0]["attributes"];
    assert_eq!(attributes["result"], super::super::KEY_PLACEHOLDER);
    assert_eq!(attributes["id"], "none");
    assert_eq!(attributes["keepers"]["rotation"], "2026-11");
    // `terraform show -json`: `sensitive_values` mirrors `values`.
    let mut shown = serde_json::json!({"values": {"root_module": {"resources": [{
        "address": "tls_private_key.deploy", "type": "tls_private_key",
        "values": {"algorithm": "ED25519", "private_key_openssh": "b3BlbnNzaC1rZXktdjEAAAAA",
                   "public_key_openssh": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"},
        "sensitive_values": {"private_key_openssh": true, "public_key_openssh": false}
    }]}}});
    masker.mask_value(&mut shown);
    let values = &shown["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(values["private_key_openssh"], super::super::KEY_PLACEHOLDER);
    assert_eq!(values["algorithm"], "ED25519");
    assert_eq!(
        values["public_key_openssh"],
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"
    );
    // A repeated mark list counts whole, whichever copy a reader keeps.
    let text = r#"{"attributes": {"result": "k7#Vb2!qLm9zR4tWx8pN3sYd"}, "sensitive_attributes": [[{"type": "get_attr", "value": "result"}]], "sensitive_attributes": []}"#;
    let (masked, _) = masker.mask_json(text).unwrap();
    assert!(!masked.contains("k7#Vb2"), "{masked}");
    // Without the marks, `result` is just a word.
    let mut unmarked = serde_json::json!({"attributes": {"result": "k7#Vb2!qLm9zR4tWx8pN3sYd"}});
    masker.mask_value(&mut unmarked);
    assert_eq!(unmarked["attributes"]["result"], "k7#Vb2!qLm9zR4tWx8pN3sYd");
}

/// Spring Boot actuator (`/actuator/env`, `/configprops`): under a sensitive property
/// name, `value` is the secret and `origin` says where it was set.
#[test]
fn where_a_secret_was_set_is_not_the_secret() {
    let masker = super::masker();
    let mut env = serde_json::json!({"propertySources": [{"name": "application.yml", "properties": {
        "spring.datasource.password": {"value": "hunter2Xq9", "origin": "class path resource [application.yml] - 7:17"},
        "app.api-key": {"value": "k7Vb2qLm9zR4tWx8", "origin": "System Environment Property \"APP_API_KEY\""}
    }}]});
    masker.mask_value(&mut env);
    let properties = &env["propertySources"][0]["properties"];
    for (name, origin) in [
        (
            "spring.datasource.password",
            "class path resource [application.yml] - 7:17",
        ),
        ("app.api-key", "System Environment Property \"APP_API_KEY\""),
    ] {
        assert_eq!(properties[name]["value"], super::super::KEY_PLACEHOLDER);
        assert_eq!(properties[name]["origin"], origin);
    }
}

#[test]
fn a_hash_sign_in_a_url_password_does_not_end_it() {
    assert_masks(&[(
        "DATABASE_URL=postgres://u8f:hy28oRD2Xn#7_@ec2-1-2-3-4.example.com:5432/d1",
        "DATABASE_URL=postgres://u8f:[MASKED:database_url_password]@ec2-1-2-3-4.example.com:5432/d1",
    )]);
    assert_unchanged(&["see https://example.com:8443/#/login and mail a@b.example"]);
}

#[test]
fn a_captured_value_stops_at_an_escaped_line_break() {
    assert_unchanged(&["output: \"Authorization: Bearer ****\\nAccept: */*\""]);
    assert_masks(&[(
        "output: \"Authorization: Bearer Kzx4TDvIyCrOBNicBju8b5zR\\nAccept: */*\"",
        "output: \"Authorization: Bearer [MASKED:authorization_header]\\nAccept: */*\"",
    )]);
}

#[test]
fn encrypted_blobs_in_braces_and_terraform_references() {
    // `{name}` is a template field; a braced random blob is not.
    assert!(is_not_a_secret("{db_password}"));
    assert!(!is_not_a_secret(
        "{AQAAABAAAAAQuxIuRlTua2VQZK0xH0iqUFaijH4dQ6OofSjYrcOWBet1C8IQ}"
    ));
    for code in ["var.db_password", "local.token", "module.db.password"] {
        assert!(is_not_a_secret(code), "{code}");
    }
    assert_unchanged(&["  password = var.db_password\n"]);
}

#[test]
fn more_short_password_flags_and_credential_constructors() {
    assert_masks(&[
        (
            "zip -r -P IJDmxBbWB*1% release.zip dist/",
            "zip -r -P [MASKED:cli_password] release.zip dist/",
        ),
        (
            "7z a -penL7BADP1@4- -mhe=on secrets.7z ./vault",
            "7z a -p[MASKED:cli_password] -mhe=on secrets.7z ./vault",
        ),
        (
            "ssh-keygen -t ed25519 -N 'Zr1PeNDMkt5^9-' -f key",
            "ssh-keygen -t ed25519 -N '[MASKED:cli_password]' -f key",
        ),
        (
            "ipmitool -I lanplus -H 10.0.9.20 -U ADMIN -P aGZ8ROwVK?5% chassis status",
            "ipmitool -I lanplus -H 10.0.9.20 -U ADMIN -P [MASKED:cli_password] chassis status",
        ),
        (
            "snmpwalk -v2c -c UiyHWujNDb3*7* 10.0.0.1",
            "snmpwalk -v2c -c [MASKED:cli_password] 10.0.0.1",
        ),
        (
            "$ sqlplus system/i1QpHjg%6#@//db.example.com:1521/ORCL",
            "$ sqlplus system/[MASKED:cli_password]@//db.example.com:1521/ORCL",
        ),
        (
            "sqlplus -s scott/Tiger#2024x@ORCL @report.sql",
            "sqlplus -s scott/[MASKED:cli_password]@ORCL @report.sql",
        ),
        (
            "rman target sys/Zq8rT5kW2x@prod",
            "rman target sys/[MASKED:cli_password]@prod",
        ),
        (
            "expdp system/Zq8rT5kW2x@ORCL schemas=hr",
            "expdp system/[MASKED:cli_password]@ORCL schemas=hr",
        ),
        (
            "$s = ConvertTo-SecureString \"5cdliARkAyW@3?\" -AsPlainText -Force",
            "$s = ConvertTo-SecureString \"[MASKED:cli_password]\" -AsPlainText -Force",
        ),
        (
            "var c = new NetworkCredential(\"svc\", \"E2IJCOf8TZ#6@\", \"CORP\");",
            "var c = new NetworkCredential(\"svc\", \"[MASKED:cli_password]\", \"CORP\");",
        ),
        (
            "s.auth = HTTPBasicAuth('bob', 'Zq8rT5kW2x')",
            "s.auth = HTTPBasicAuth('bob', '[MASKED:cli_password]')",
        ),
    ]);
    assert_unchanged(&[
        "gzip -9 -c file > file.gz",
        "snmpwalk -v3 -l authPriv -u monitor 10.0.0.1",
        "sqlplus / as sysdba",
        "var c = new NetworkCredential(user, password);",
        "requests.get(url, auth=(user, os.environ[\"PW\"]))",
    ]);
}

#[test]
fn mail_and_ftp_session_logins_are_masked() {
    assert_masks(&[
        (
            "C: AUTH PLAIN AGFsaWNlADlIcFZ6akRrVCU3QA==\r\nS: 235 ok\r\n",
            "C: AUTH PLAIN [MASKED:protocol_password]\r\nS: 235 ok\r\n",
        ),
        (
            "USER deploy\r\n331 Password required\r\nPASS I7VH9BBbw#7!\r\n230 ok\r\n",
            "USER deploy\r\n331 Password required\r\nPASS [MASKED:protocol_password]\r\n230 ok\r\n",
        ),
        (
            "a1 LOGIN alice \"nAN3zrCln&8_\"\r\na1 OK\r\n",
            "a1 LOGIN alice \"[MASKED:protocol_password]\"\r\na1 OK\r\n",
        ),
    ]);
    assert_unchanged(&[
        "Please pass the salt\nPASS the test suite before merging\n",
        "Go to the LOGIN page and sign in\n",
        "S: 250-AUTH PLAIN LOGIN\r\n",
    ]);
}

#[test]
fn ldif_htpasswd_and_crypt_hashes_are_masked() {
    assert_masks(&[
        (
            "uid: jdoe\nuserPassword:: e1NTSEF9WEY5NlJMUWdEQVRrNzRZcTVq\n",
            "uid: jdoe\nuserPassword:: [MASKED:password_assignment]\n",
        ),
        (
            "admin:$apr1$7oowQxqR$w8twgsiBUybkQo0JwPlT9q\n",
            "admin:[MASKED:password_hash]\n",
        ),
        (
            "ops:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\n",
            "ops:[MASKED:password_hash]\n",
        ),
        (
            "legacy:$1$8fDJtDq2$TOtNxd/qbipS6FqupXhLCN:19500:0:99999:7:::\n",
            "legacy:[MASKED:password_hash]:19500:0:99999:7:::\n",
        ),
    ]);
    assert_unchanged(&["std::env::var(\"X\")", "price: $1$ per unit"]);
}

#[test]
fn openvpn_static_keys_are_masked_whole() {
    let key = "-----BEGIN OpenVPN Static key V1-----\ne1a96ac324ac3cba358120583d5a972c\nfb694c34bf62186ac03cab29a028ba9e\n-----END OpenVPN Static key V1-----";
    assert_masks(&[(
        &format!("<tls-auth>\n{key}\n</tls-auth>\n"),
        "<tls-auth>\n[MASKED:private_key]\n</tls-auth>\n",
    )]);
}

#[test]
fn signed_url_signatures_and_session_tokens_are_masked() {
    assert_masks(&[(
        "https://b.s3.amazonaws.com/r.pdf?X-Amz-Credential=ASIAX%2F1&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEAbc&X-Amz-SignedHeaders=host&X-Amz-Signature=9f86d081884c7d659a2feaa0c55ad015",
        "https://b.s3.amazonaws.com/r.pdf?X-Amz-Credential=[MASKED:password_assignment]&X-Amz-Security-Token=[MASKED:url_query_secret]&X-Amz-SignedHeaders=host&X-Amz-Signature=[MASKED:url_query_secret]",
    )]);
    assert_unchanged(&["https://b.s3.amazonaws.com/r.pdf?X-Amz-SignedHeaders=host"]);
}

#[test]
fn a_host_keyed_object_under_a_sensitive_name_is_masked_in_text() {
    assert_masks(&[(
        "{\"bearer\": {\"repo.example.org\": \"8yXMIduZGM7eFpb7hhF7m4Wi\"}}",
        "{\"bearer\": {\"repo.example.org\": \"[MASKED:password_assignment]\"}}",
    )]);
    // A schema or a user/password object is not host-keyed.
    assert_unchanged(&[
        "{\"password\": {\"type\": \"string\", \"description\": \"The user's password\"}}",
    ]);
}

#[test]
fn data_rows_of_a_markdown_table_are_not_headers() {
    assert_unchanged(&[
        "| Variable | Description |\n|---|---|\n| `DB_PASSWORD` | Database password |\n| `API_TOKEN` | Token for the API |\n",
    ]);
    assert_masks(&[(
        "| user | password |\n|---|---|\n| bob | Zq8rT5kW2x |\n",
        "| user | password |\n|---|---|\n| bob | [MASKED:secret_column] |\n",
    )]);
}

#[test]
fn bracketed_phrases_are_one_value() {
    assert_unchanged(&[
        "  + password = (sensitive value)\n",
        "db_password = <sensitive>\n",
        "  + token = (known after apply)\n",
        "output: \"curl -H \\\"Authorization: Bearer <token>\\\" https://x\"",
    ]);
}

#[test]
fn weak_keys_in_json_hold_a_secret_only_when_the_value_looks_generated() {
    let masker = super::masker();
    let mut value = serde_json::json!({
        "SENDGRID_KEY": "OxpwHh1CGduuuq5fLxHbYBSXr8XssvGe",
        "tokens": ["6Xba9awUhWzVQzS9szYBcFASsMupb7OW", "zlaBi0SH8VXDyswH7CLI2K5NzRdwfTor"],
        "cache_key": "users:v2:list",
        "max_tokens": 4096,
        "secrets": ["db_password", "api_key"],
    });
    masker.mask_value(&mut value);
    assert_eq!(
        value,
        serde_json::json!({
            "SENDGRID_KEY": "[MASKED:json_key]",
            "tokens": ["[MASKED:json_key]", "[MASKED:json_key]"],
            "cache_key": "users:v2:list",
            "max_tokens": 4096,
            "secrets": ["db_password", "api_key"],
        })
    );
}

#[test]
fn netrc_entries_spread_over_lines_are_masked() {
    assert_masks(&[
        (
            "machine api.example.com\n  login me@example.com\n  password 0f3c2a1e-6b7d-4c8e-9a0b-1c2d3e4f5a6b\n",
            "machine api.example.com\n  login me@example.com\n  password [MASKED:netrc_password]\n",
        ),
        (
            "machine a.example.com\nlogin me\npassword Zq8rT5kW2x\nmachine b.example.com\nlogin me\npassword Zq8rT5kW2y\n",
            "machine a.example.com\nlogin me\npassword [MASKED:netrc_password]\nmachine b.example.com\nlogin me\npassword [MASKED:netrc_password]\n",
        ),
    ]);
}

#[test]
fn name_value_pairs_labelled_or_typed_concealed_are_masked() {
    let masker = super::masker();
    let mut value = serde_json::json!({"fields": [
        {"id": "username", "type": "STRING", "label": "username", "value": "admin"},
        {"id": "password", "type": "CONCEALED", "label": "password", "value": "f8kly33KwsgBJ9XD"},
        {"id": "notes", "type": "CONCEALED", "label": "recovery", "value": "one two three four"},
    ]});
    let text = serde_json::to_string_pretty(&value).unwrap();
    masker.mask_value(&mut value);
    assert_eq!(value["fields"][0]["value"], "admin");
    assert_ne!(value["fields"][1]["value"], "f8kly33KwsgBJ9XD");
    assert_ne!(value["fields"][2]["value"], "one two three four");
    // The same item as plain text (a log line, a file), not parsed as JSON.
    let masked = masked_text(&text).0;
    assert!(masked.contains("\"admin\""), "{masked}");
    assert!(!masked.contains("f8kly33KwsgBJ9XD"), "{masked}");
}

#[test]
fn redacted_values_that_keep_a_prefix_or_last_characters_are_placeholders() {
    assert_unchanged(&[
        "  - Token: gho_************************************\n",
        "live_mode_api_key = '****************************************HVLd'\n",
        "api_key: sk-...Xy9z\n",
    ]);
}

#[test]
fn bracketed_instructions_are_not_values() {
    assert_unchanged(&[
        "  password:    [use 'op item get iklbjvx8xtrkqy6fep3e68viza --reveal' to reveal]\n",
    ]);
}

#[test]
fn help_text_listing_a_short_password_flag_is_not_a_command() {
    assert_unchanged(&[
        "output: \"Usage:  docker login [OPTIONS]\\n\\nOptions:\\n  -p, --password string   Password\\n\"",
    ]);
}
#[test]
fn box_drawn_tables_are_read_like_pipe_tables() {
    assert_masks(&[(
        "│ NAME           │ VALUE            │\n│ DOPPLER_CONFIG │ prd              │\n│ SESSION_SECRET │ nf0aqtty1e085muf │\n",
        "│ NAME           │ VALUE            │\n│ DOPPLER_CONFIG │ prd              │\n│ SESSION_SECRET │ [MASKED:password_assignment] │\n",
    )]);
}

#[test]
fn every_value_of_a_kubernetes_secret_manifest_is_masked() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-env\ntype: Opaque\nstringData:\n  WEBHOOK_SIGNING: rh65LUfQAc69jM6SD2Jl\n";
    let masked = masked_text(text).0;
    assert!(!masked.contains("rh65LUfQAc69jM6SD2Jl"), "{masked}");
    assert!(masked.contains("name: app-env"), "{masked}");
    // `kubectl get -o yaml` sorts `data` before `kind`; also inside a JSON-escaped log line.
    for text in [
        "apiVersion: v1\ndata:\n  tls.key: TFMwdExTMUNSVWRKVGlCUVVrbFdRVlJG\nkind: Secret\nmetadata:\n  name: tls\n",
        "output: \"apiVersion: v1\\ndata:\\n  tls.key: TFMwdExTMUNSVWRKVGlCUVVrbFdRVlJG\\nkind: Secret\\n\"",
    ] {
        let masked = masked_text(text).0;
        assert!(
            !masked.contains("TFMwdExTMUNSVWRKVGlCUVVrbFdRVlJG"),
            "{masked}"
        );
    }
    // The same keys outside a Secret are not secret.
    assert_unchanged(&["kind: ConfigMap\ndata:\n  WEBHOOK_SIGNING: enabled\n"]);
}

#[test]
fn gem_credentials_keyed_by_a_push_host_are_masked() {
    assert_masks(&[(
        "---\n:rubygems_api_key: ff9cf7dabdcffd4cd18fdb6588d8285d\n:https://gems.example.com: x1B8ND8FQog2HowzazwFbSgN\n",
        "---\n:rubygems_api_key: [MASKED:password_assignment]\n:https://gems.example.com: [MASKED:host_keyed_token]\n",
    )]);
    assert_unchanged(&["see\n:https://example.com/docs: read this first\n"]);
}

/// `kubectl get secrets -o yaml` prints a `kind: List` whose items are the Secrets.
#[test]
fn secrets_inside_a_kubernetes_list_are_masked() {
    let listed = "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    ca.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    username: YWRtaW4=\n  kind: Secret\n  metadata:\n    name: db-creds\n  type: Opaque\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
    let masked = super::masked_text(listed).0;
    assert!(!masked.contains("YWRtaW4="), "{masked}");
    assert!(
        !masked.contains("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"),
        "{masked}"
    );
    assert!(masked.contains("name: db-creds"), "{masked}");
}

/// `op item get --format json` read as text (quoted in a message, or printed pretty and
/// cut): a field typed `CONCEALED` holds a secret whatever its label says.
#[test]
fn fields_typed_concealed_are_masked_in_plain_text_too() {
    assert_masks(&[
        (
            "Item r2:\n{\"id\":\"r2\",\"type\":\"CONCEALED\",\"label\":\"recovery\",\"value\":\"one two three four\"}\n",
            "Item r2:\n{\"id\":\"r2\",\"type\":\"CONCEALED\",\"label\":\"recovery\",\"value\":\"[MASKED:password_assignment]\"}\n",
        ),
        (
            "fields:\n- id: r2\n  type: CONCEALED\n  label: pin\n  value: Xh38vQp2LmZ9rT4w\n",
            "fields:\n- id: r2\n  type: CONCEALED\n  label: pin\n  value: [MASKED:password_assignment]\n",
        ),
    ]);
    assert_unchanged(&[
        "The field is concealed: value shown on request.\n",
        "{\"type\": \"STRING\", \"label\": \"username\", \"value\": \"admin\"}",
    ]);
}
