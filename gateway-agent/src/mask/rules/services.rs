//! Credentials issued by a particular service, recognised by their documented format.
//! Where a format has a literal prefix the rule needs nothing else; where it has none the
//! rule only fires within a few characters of the vendor's name and masks the value alone.

use super::{Rule, rule};

pub const RULES: &[Rule] = &[
    // Cloud platforms
    rule!(
        "aws_access_key_id",
        ["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16,}"
    ),
    // 40 base64 characters are too common to mask alone: only next to its own name.
    rule!(
        "aws_secret_access_key",
        [
            "aws",
            "secretaccesskey",
            "secret_access_key",
            "secret-access-key",
            "secret access key",
            "AKIA",
            "ASIA"
        ],
        r#"(?i)(?:(?:aws.{0,24}?(?:secret|private)|secret[_\-\s]?access[_\-\s]?key).{0,24}?[=:"'\s,]{1,6}|(?-i:\b(?:AKIA|ASIA)[A-Z0-9]{16}\b)[^\r\n]{0,40}?[^A-Za-z0-9/+\r\n])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#
    ),
    // STS session tokens are base64 of a protobuf whose first bytes are fixed.
    rule!(
        "aws_session_token",
        ["IQoJb3JpZ2lu", "FwoGZXIvYXdz"],
        r"\b(?:IQoJb3JpZ2lu|FwoGZXIvYXdz)[A-Za-z0-9/+]{100,}={0,2}"
    ),
    rule!("gcp_api_key", ["AIza"], r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    rule!(
        "google_oauth_client_secret",
        ["GOCSPX-"],
        r"\bGOCSPX-[0-9A-Za-z_\-]{28}\b"
    ),
    rule!(
        "google_oauth_access_token",
        ["ya29."],
        r"\bya29\.[0-9A-Za-z_\-]{20,}"
    ),
    rule!(
        "google_oauth_refresh_token",
        ["1//0"],
        r"\b1//0[0-9A-Za-z_\-]{40,}"
    ),
    rule!(
        "azure_storage_account_key",
        ["AccountKey="],
        r"(?i)\bAccountKey=([A-Za-z0-9+/]{40,}={0,2})"
    ),
    rule!(
        "azure_shared_access_key",
        ["SharedAccessKey="],
        r"(?i)\bSharedAccessKey=([A-Za-z0-9+/]{40,}={0,2})"
    ),
    rule!(
        "azure_sas_signature",
        ["sig="],
        r"[?&;]sig=([A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})"
    ),
    // Entra ID (Azure AD) client secrets carry `Q~` after three characters and a digit.
    rule!(
        "azure_ad_client_secret",
        ["Q~"],
        r"(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34})(?:$|[^A-Za-z0-9_~.\-])"
    ),
    rule!(
        "digitalocean_token",
        ["dop_v1_", "doo_v1_", "dor_v1_"],
        r"\bdo[opr]_v1_[a-f0-9]{64}\b"
    ),
    rule!("heroku_api_key", ["HRKU-"], r"\bHRKU-[A-Za-z0-9_\-]{30,}"),
    rule!(
        "heroku_api_key_legacy",
        ["heroku"],
        r"(?i)heroku.{0,40}?\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"
    ),
    rule!(
        "databricks_token",
        ["dapi"],
        r"\bdapi[a-f0-9]{32}(?:-[0-9])?\b"
    ),
    rule!(
        "vault_token",
        ["hvs.", "hvb.", "hvr."],
        r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}"
    ),
    rule!(
        "terraform_cloud_token",
        [".atlasv1."],
        r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}"
    ),
    rule!(
        "planetscale_token",
        ["pscale_tkn_", "pscale_pw_", "pscale_oauth_"],
        r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.=]{32,64}"
    ),
    rule!(
        "supabase_token",
        ["sbp_", "sb_secret_"],
        r"\b(?:sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_\-]{20,})\b"
    ),
    rule!(
        "doppler_token",
        [
            "dp.pt.",
            "dp.st.",
            "dp.sa.",
            "dp.ct.",
            "dp.scim.",
            "dp.audit."
        ],
        r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b"
    ),
    rule!("pulumi_token", ["pul-"], r"\bpul-[a-f0-9]{40}\b"),
    rule!(
        "fly_io_token",
        ["FlyV1 fm"],
        r"\bFlyV1 fm[0-9]_[A-Za-z0-9+/=_\-]{50,}"
    ),
    // Firebase Cloud Messaging legacy server keys: an instance id, `:APA91b`, a tail.
    rule!(
        "fcm_server_key",
        [":APA91b"],
        r"\bAAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{100,}"
    ),
    rule!(
        "okta_api_token",
        ["okta"],
        r"(?i)okta.{0,40}?\b(00[A-Za-z0-9_\-]{40})\b"
    ),
    // Source hosting, CI and package registries
    rule!("github_pat", ["ghp_"], r"\bghp_[A-Za-z0-9]{36,}"),
    rule!("github_oauth_token", ["gho_"], r"\bgho_[A-Za-z0-9]{36,}"),
    rule!("github_user_token", ["ghu_"], r"\bghu_[A-Za-z0-9]{36,}"),
    rule!("github_server_token", ["ghs_"], r"\bghs_[A-Za-z0-9]{36,}"),
    rule!(
        "github_refresh_token",
        ["ghr_"],
        r"\bghr_[A-Za-z0-9]{36,76}\b"
    ),
    // Named `gh_…` so the placeholder does not repeat the token's own `github_` prefix.
    rule!(
        "gh_fine_grained_pat",
        ["github_pat_"],
        r"\bgithub_pat_[A-Za-z0-9_]{50,255}\b"
    ),
    rule!(
        "gitlab_token",
        [
            "glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-", "gloas-"
        ],
        r"\bgl(?:pat|dt|rt|ptt|soat|cbt|oas)-[A-Za-z0-9_\-]{20,}"
    ),
    rule!(
        "bitbucket_app_password",
        ["ATBB"],
        r"\bATBB[A-Za-z0-9_=.\-]{28,}"
    ),
    rule!("npmjs_token", ["npm_"], r"\bnpm_[A-Za-z0-9]{36,}"),
    // PyPI tokens are macaroons whose base64 starts with the issuer's domain.
    rule!(
        "python_index_token",
        ["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"],
        r"\bpypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,}"
    ),
    rule!(
        "dockerhub_pat",
        ["dckr_pat_", "dckr_oat_"],
        r"\bdckr_[op]at_[A-Za-z0-9_\-]{27,}"
    ),
    rule!("buildkite_token", ["bkua_"], r"\bbkua_[a-f0-9]{40}\b"),
    rule!(
        "circleci_token",
        ["CCIPAT_", "CCIPRJ_"],
        r"\bCCIP(?:AT|RJ)_[A-Za-z0-9_]{40,}"
    ),
    rule!(
        "sourcegraph_token",
        ["sgp_"],
        r"\bsgp_(?:[a-f0-9]{16}_)?[a-f0-9]{40}\b"
    ),
    // Chat, mail and payments
    rule!(
        "slack_token",
        ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe"],
        r"\bxox(?:[abprs]|e(?:\.xox[bp])?)-[A-Za-z0-9\-]{10,}"
    ),
    rule!(
        "slack_app_token",
        ["xapp-"],
        r"\bxapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+"
    ),
    rule!(
        "slack_webhook",
        ["hooks.slack.com"],
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,}"
    ),
    rule!(
        "discord_webhook",
        ["/api/webhooks/"],
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]{60,}"
    ),
    // Bot tokens are base64(user id).timestamp.hmac: only near "discord" or a `Bot` scheme.
    rule!(
        "discord_bot_token",
        ["discord", "bot "],
        r"(?:(?i:discord).{0,40}?|\b(?i:bot)\s+)\b([MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6,7}\.[A-Za-z0-9_\-]{27,40})\b"
    ),
    rule!(
        "telegram_bot_token",
        [":AA"],
        r"\b[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}\b"
    ),
    rule!(
        "stripe_key",
        ["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{20,}\b"
    ),
    rule!(
        "stripe_webhook_secret",
        ["whsec_"],
        r"\bwhsec_[A-Za-z0-9+/=]{32,}"
    ),
    rule!(
        "square_token",
        ["sq0atp-", "sq0csp-", "EAAA"],
        r"\b(?:sq0(?:atp|csp)-[0-9A-Za-z_\-]{22,43}|EAAA[A-Za-z0-9_\-]{60})\b"
    ),
    rule!(
        "braintree_token",
        ["access_token$"],
        r"\baccess_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}\b"
    ),
    rule!(
        "twilio_api_key",
        ["twilio"],
        r"(?i)twilio.{0,40}?\b(SK[0-9a-f]{32})\b"
    ),
    rule!(
        "twilio_auth_token",
        ["twilio"],
        r"(?i)twilio.{0,20}?(?:auth|token|secret).{0,20}?\b([0-9a-f]{32})\b"
    ),
    rule!(
        "sendgrid_api_key",
        ["SG."],
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"
    ),
    rule!("mailgun_api_key", ["key-"], r"\bkey-[0-9a-f]{32}\b"),
    rule!(
        "mailchimp_api_key",
        ["-us"],
        r"\b[0-9a-f]{32}-us[0-9]{1,2}\b"
    ),
    // SaaS and developer tools
    rule!(
        "shopify_token",
        ["shpat_", "shpca_", "shppa_", "shpss_"],
        r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"
    ),
    rule!(
        "atlassian_api_token",
        ["ATATT3", "ATCTT3"],
        r"\bAT[AC]TT3[A-Za-z0-9_\-=]{100,}"
    ),
    rule!(
        "linear_api_key",
        ["lin_api_", "lin_oauth_"],
        r"\blin_(?:api|oauth)_[A-Za-z0-9]{40,}"
    ),
    rule!(
        "notion_token",
        ["secret_", "ntn_"],
        r"\b(?:secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35})\b"
    ),
    rule!(
        "newrelic_key",
        ["NRAK-", "NRII-", "NRJS-"],
        r"\bNR(?:AK|II|JS)-[A-Za-z0-9]{19,32}\b"
    ),
    rule!(
        "datadog_key",
        ["datadog", "dd_api", "dd_app", "dd-api", "dd-app"],
        r"(?i)(?:datadog|dd)[_\-]?(?:api|app(?:lication)?)[_\-]?key.{0,20}?\b([a-f0-9]{32}|[a-f0-9]{40})\b"
    ),
    rule!(
        "postman_api_key",
        ["PMAK-"],
        r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"
    ),
    rule!(
        "grafana_token",
        ["glsa_", "glc_"],
        r"\b(?:glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})"
    ),
    rule!(
        "sentry_token",
        ["sntrys_", "sntryu_"],
        r"\bsntry[su]_[A-Za-z0-9+/=_\-]{40,}"
    ),
    rule!("figma_token", ["figd_"], r"\bfigd_[A-Za-z0-9_\-]{40,}"),
    rule!(
        "contentful_token",
        ["CFPAT-"],
        r"\bCFPAT-[A-Za-z0-9_\-]{43}\b"
    ),
    rule!("netlify_token", ["nfp_"], r"\bnfp_[A-Za-z0-9]{36,40}\b"),
    rule!(
        "onepassword_service_token",
        ["ops_eyJ"],
        r"\bops_eyJ[A-Za-z0-9+/=_\-]{100,}"
    ),
    rule!(
        "mapbox_secret_token",
        ["sk.eyJ"],
        r"\bsk\.eyJ[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}"
    ),
    rule!("dropbox_token", ["sl."], r"\bsl\.[A-Za-z0-9_\-]{130,}"),
    rule!("adafruit_io_key", ["aio_"], r"\baio_[A-Za-z0-9]{28,}"),
    rule!(
        "age_secret_key",
        ["AGE-SECRET-KEY-"],
        r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b"
    ),
    // Model providers
    rule!(
        "openai_api_key",
        ["T3BlbkFJ", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,})"
    ),
    rule!(
        "anthropic_api_key",
        ["sk-ant-"],
        r"\bsk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_\-]{32,}"
    ),
    rule!(
        "openrouter_api_key",
        ["sk-or-v1-"],
        r"\bsk-or-v1-[a-f0-9]{64}\b"
    ),
    rule!(
        "langfuse_secret_key",
        ["sk-lf-"],
        r"\bsk-lf-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}\b"
    ),
    rule!("huggingface_token", ["hf_"], r"\bhf_[A-Za-z0-9]{34,}\b"),
    rule!("replicate_token", ["r8_"], r"\br8_[A-Za-z0-9]{37,}"),
    rule!("groq_api_key", ["gsk_"], r"\bgsk_[A-Za-z0-9]{52,}"),
    rule!("perplexity_api_key", ["pplx-"], r"\bpplx-[A-Za-z0-9]{48,}"),
    rule!("xai_api_key", ["xai-"], r"\bxai-[A-Za-z0-9]{80,}"),
    rule!(
        "langsmith_api_key",
        ["lsv2_pt_", "lsv2_sk_"],
        r"\blsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b"
    ),
    rule!("pinecone_api_key", ["pcsk_"], r"\bpcsk_[A-Za-z0-9_]{40,}"),
    rule!(
        "tailscale_key",
        ["tskey-"],
        r"\btskey-(?:auth|api|client|scim|webhook)-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}"
    ),
];
