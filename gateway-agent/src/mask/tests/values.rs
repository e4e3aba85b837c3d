//! What sits where a secret would but is not one.

use super::super::values::is_not_a_secret;

#[test]
fn code_references_placeholders_and_nothing_are_not_secrets() {
    for value in [
        "",
        "   ",
        "os.environ[\"OPENAI_API_KEY\"]",
        "os.environ[",
        "getpass()",
        "get_token(user)",
        "process.env.API_KEY",
        "self.password",
        "System.getenv(\"DB_PASSWORD\")",
        "Option<String>",
        "${DB_PASSWORD}",
        "${{ secrets.GITHUB_TOKEN }}",
        "$(cat /run/secrets/db)",
        "$GITHUB_TOKEN",
        "$password",
        "%DB_PASS%",
        "{{ vault_db_password }}",
        "{password}",
        "%(password)s",
        "!vault",
        "********",
        "•••••••",
        "xxxxxxxx",
        "[REDACTED]",
        "[MASKED:json_key]",
        "<your-token>",
        "<TOKEN>",
        "your_api_key_here",
        "YOUR_TOKEN",
        "...",
        "null",
        "None",
        "required",
        "string",
        "/run/secrets/db_password",
        "~/.ssh/id_ed25519",
    ] {
        assert!(is_not_a_secret(value), "{value:?} should not be a secret");
    }
}

#[test]
fn made_values_are_secrets() {
    for value in [
        "hunter2",
        "changeme",
        "Tr0ub4dor&3",
        "p@ss&w0rd#Q7x",
        "$ecretP4ss",
        "$2b$12$abcdefghijklmnopqrstuv",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "q9_1fJ.CVBoJZWTJnU0EI1hda3.SinsgNw",
        "base64:Zm9vYmFyYmF6",
        "{COQLCE6DU6GtcS5P=}",
        "12345678",
        "/K7MDENG/bPxRfiCY+EXAMPLEKEY0123456789ab",
    ] {
        assert!(!is_not_a_secret(value), "{value:?} should be a secret");
    }
}
