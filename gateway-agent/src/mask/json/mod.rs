//! Masking a JSON text without re-writing it: decide on a span tree ([`doc`]), replace
//! only the values that hold secrets ([`edit`]), keep every other byte — key order,
//! indentation, escapes — as the server wrote it.
//!
//! Where a value sits decides how it is read ([`Place`]):
//! - **data**: a key names what its value holds (`password`, `apiKey`: see `keys`);
//!   strings are scanned for credential patterns, and strings that hold JSON are masked as
//!   JSON. Objects that name a secret in a field (`{"name": "DB_PASSWORD", "value": …}`,
//!   an SSM `SecureString`, a Terraform output marked `sensitive`, a Kubernetes `Secret`'s
//!   `data`) have their value masked as if it sat under a sensitive key, and so do the
//!   attributes Terraform's own marks name ([`terraform`]).
//! - **secret** (under a sensitive key): every string is a secret, unless it is empty, a
//!   placeholder, or no secret at all (a variable reference, `****`: see `values`).
//!   Containers are entered, never replaced, and numbers, booleans and null are kept, so
//!   a masked message keeps the JSON types the tool's `outputSchema` promises: a client
//!   that validates structured results still accepts it.
//! - **schema**: keywords are structure and property names are names; only the keywords
//!   holding instance values carry data (see [`schema`]).

mod doc;
mod edit;
mod key;
mod keyfacts;
mod reuse;
mod schema;
mod string;
mod terraform;

use std::borrow::Cow;

pub use doc::{Doc, Kind, NodeId, ParseError};
pub use edit::{Edits, Style, apply_sorted};

use self::{
    key::NormKey,
    keyfacts::{Field, KeyFacts, KeyTable, Shape},
    reuse::{MIN_REUSED, Reuse},
    schema::Keyword,
    terraform::Marks,
};
use super::{
    DEPTH_PLACEHOLDER, KEY_PLACEHOLDER, MAX_DEPTH, MIN_SCANNED_KEY, MaskReport, Rules,
    is_placeholder, scan::Path, values,
};

/// How a value is read, from where it sits (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Data,
    Secret,
    /// `secret_name`: the schema describes a property with a sensitive name, so the
    /// instance values it lists (`default`, `examples`…) are secrets.
    Schema {
        secret_name: bool,
    },
}

/// What the caller of [`Walker::object`] already knows about some of its members.
#[derive(Clone, Copy)]
enum Told<'s, 'a> {
    Nothing,
    /// Left alone (the caller handles them).
    Skip(&'s [&'s str]),
    /// Hold secrets because a sibling of the object says so (Terraform's marks).
    Secret(&'s [Cow<'a, str>]),
}

/// Keys of the field that holds the value in a name/value pair object.
const VALUE_KEYS: [&str; 4] = ["value", "parametervalue", "outputvalue", "secretvalue"];
/// Keys of a Kubernetes Secret's fields that hold its values.
const SECRET_DATA_KEYS: [&str; 2] = ["data", "stringdata"];
/// Private members of a JSON Web Key (RFC 7518 §6.2.2, §6.3.2, §6.4): a JWK with a
/// `kty` is a key, and these hold its secret part (a public JWK has none of them).
const JWK_PRIVATE_KEYS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
/// The longest raw key [`Walker::secret_fields`] looks at (`Parameter_Value` and the
/// like, with separators).
const MAX_FIELD_KEY: usize = 16;

/// One masking pass over one document.
pub(super) struct Walker<'r> {
    rules: &'r Rules,
    report: &'r mut MaskReport,
    /// The scanner's keyword search (the staged one but in differential tests).
    path: Path,
    /// Repeated text is masked once ([`reuse`]); not on the reference path, which the
    /// differential tests compare with.
    reusing: bool,
    reuse: Reuse,
    /// Answers about keys, by key ([`keyfacts`]); made on first use, not on the
    /// reference path.
    keys: Option<KeyTable>,
    /// Nesting-limit events so far (a limit reached, a JSON-looking string refused): a
    /// container whose walk saw one is not reused.
    depth_events: usize,
    /// The deepest value walked so far within the current container.
    deepest: usize,
}

impl<'r> Walker<'r> {
    pub fn new(rules: &'r Rules, report: &'r mut MaskReport, path: Path) -> Self {
        Self {
            rules,
            report,
            path,
            reusing: path == Path::Staged,
            reuse: Reuse::default(),
            keys: None,
            depth_events: 0,
            deepest: 0,
        }
    }

    /// Ends the walk: its answers about keys are kept for this thread's next one.
    pub fn finish(self) {
        if let Some(keys) = self.keys {
            KeyTable::keep(keys);
        }
    }

    /// Masks `node` read as data, `depth` containers (JSON inside strings included) below
    /// the message's top.
    pub fn data(&mut self, doc: &Doc<'_>, node: NodeId, depth: usize, edits: &mut Edits) {
        self.walk(doc, node, Place::Data, depth, edits);
    }

    /// Masks an object's members read as data, but for those named in `skip`.
    pub fn data_members(
        &mut self,
        doc: &Doc<'_>,
        object: NodeId,
        skip: &[&str],
        depth: usize,
        edits: &mut Edits,
    ) {
        if doc.kind(object) == Kind::Object {
            self.object(doc, object, Place::Data, Told::Skip(skip), depth, edits);
        } else {
            self.walk(doc, object, Place::Data, depth, edits);
        }
        self.masked_deferred(doc, edits);
    }

    fn walk(&mut self, doc: &Doc<'_>, node: NodeId, place: Place, depth: usize, edits: &mut Edits) {
        self.deepest = self.deepest.max(depth);
        match doc.kind(node) {
            Kind::Object | Kind::Array if depth >= MAX_DEPTH => {
                // Not inspected, so not released (fail closed).
                let (start, end) = doc.span(node);
                edits.push(start, end, Style::default().encode(DEPTH_PLACEHOLDER));
                self.report.hit("too_deep");
                self.depth_events += 1;
            }
            Kind::Object | Kind::Array
                if self.reusing
                    && place == Place::Data
                    && doc.span(node).1 - doc.span(node).0 >= MIN_REUSED =>
            {
                self.remembered(doc, node, depth, edits);
            }
            Kind::Object | Kind::Array => self.container(doc, node, place, depth, edits),
            Kind::String { .. } => match place {
                Place::Secret => self.secret_string(doc, node, edits),
                // A string where a schema was expected is not a schema: read it as data.
                Place::Data | Place::Schema { .. } => self.data_string(doc, node, depth, edits),
            },
            Kind::Number | Kind::Bool(_) | Kind::Null => {}
        }
    }

    fn container(
        &mut self,
        doc: &Doc<'_>,
        node: NodeId,
        place: Place,
        depth: usize,
        edits: &mut Edits,
    ) {
        if doc.kind(node) == Kind::Object {
            self.object(doc, node, place, Told::Nothing, depth, edits);
        } else {
            // Under a schema keyword, an array is a list of subschemas (`anyOf`,
            // draft-07 `items`); elsewhere its items sit where it sits.
            for item in doc.children(node) {
                self.walk(doc, item, place, depth + 1, edits);
            }
        }
    }

    fn object(
        &mut self,
        doc: &Doc<'_>,
        node: NodeId,
        place: Place,
        told: Told<'_, '_>,
        depth: usize,
        edits: &mut Edits,
    ) {
        let (place, secret_fields, terraform) = match place {
            // The reference path reads the object once per question, as before.
            Place::Data if !self.reusing => {
                if schema::looks_like_schema(doc, node) {
                    (Place::Schema { secret_name: false }, &[][..], false)
                } else {
                    let terraform = doc
                        .children(node)
                        .any(|child| doc.key(child).is_some_and(|k| terraform::is_marker(&k)));
                    (Place::Data, self.secret_fields(doc, node), terraform)
                }
            }
            Place::Data => match self.shape(doc, node) {
                None => (Place::Schema { secret_name: false }, &[][..], false),
                Some((fields, terraform)) => (Place::Data, fields, terraform),
            },
            other => (other, &[][..], false),
        };
        let marks = if terraform {
            Marks::of(doc, node)
        } else {
            Marks::default()
        };
        let mut renames = Vec::new();
        for child in doc.children(node) {
            let key = doc.key(child).unwrap_or_default();
            if let Told::Skip(skip) = told
                && skip.contains(&key.as_ref())
            {
                continue;
            }
            let child_place = match place {
                // Spring Boot actuator's `{"value": …, "origin": "class path resource
                // […]"}` under a sensitive property name: the origin says where the value
                // was set, not what it is.
                Place::Secret if key == "origin" && doc.member(node, "value").is_some() => {
                    Place::Data
                }
                Place::Secret => Place::Secret,
                Place::Data if matches!(told, Told::Secret(names) if names.contains(&key)) => {
                    Place::Secret
                }
                Place::Data => {
                    let facts = self.key_facts(doc, child);
                    self.data_member_place(doc, child, &key, facts, secret_fields)
                }
                Place::Schema { secret_name } => self.keyword_place(doc, child, &key, secret_name),
            };
            let keyword = match place {
                Place::Schema { .. } => schema::keyword(&key),
                _ => Keyword::Other,
            };
            match (place, keyword) {
                (Place::Schema { .. }, Keyword::SchemaMap { property_names })
                    if doc.kind(child) == Kind::Object =>
                {
                    // The map's keys are names; each value is a subschema.
                    for sub in doc.children(child) {
                        let name = doc.key(sub).unwrap_or_default();
                        let secret = property_names && self.rules.keys.is_sensitive(&name);
                        let sub_place = if schema::can_be_schema(doc, sub) {
                            Place::Schema {
                                secret_name: secret,
                            }
                        } else if secret {
                            Place::Secret
                        } else {
                            Place::Data
                        };
                        self.walk(doc, sub, sub_place, depth + 2, edits);
                    }
                }
                // Terraform's `attributes`/`values`, some of whose members its own marks
                // call sensitive.
                _ if let Some(names) = marks.names_under(&key)
                    && child_place == Place::Data
                    && doc.kind(child) == Kind::Object
                    && depth + 1 < MAX_DEPTH =>
                {
                    self.object(
                        doc,
                        child,
                        Place::Data,
                        Told::Secret(names),
                        depth + 1,
                        edits,
                    );
                }
                _ => self.walk(doc, child, child_place, depth + 1, edits),
            }
            self.scan_key(child, &key, &mut renames);
        }
        self.rename_keys(doc, node, renames, edits);
    }

    /// The answers about `child`'s key, from the table when there is one.
    fn key_facts(&mut self, doc: &Doc<'_>, child: NodeId) -> KeyFacts {
        let (raw, escaped) = doc.key_raw(child).unwrap_or_default();
        if !self.reusing {
            return KeyFacts::of(self.rules, &doc.key(child).unwrap_or_default());
        }
        let rules = self.rules;
        self.keys
            .get_or_insert_with(|| KeyTable::for_rules(rules))
            .facts(rules, raw, escaped)
    }

    /// [`Walker::member_place`] from the key's answers.
    fn data_member_place(
        &self,
        doc: &Doc<'_>,
        child: NodeId,
        key: &str,
        facts: KeyFacts,
        secret_fields: &[&str],
    ) -> Place {
        if facts.sensitive
            || (!secret_fields.is_empty() && NormKey::new(key).is_any(secret_fields))
            || (facts.weak && generated(doc, child))
        {
            Place::Secret
        } else if facts.schema_member && schema::can_be_schema(doc, child) {
            Place::Schema { secret_name: false }
        } else {
            Place::Data
        }
    }

    /// What an object found where data was expected is, read in one pass over its
    /// members: `None` for a JSON Schema ([`schema::looks_like_schema`]), else the keys
    /// of its fields that hold a secret because another field says so
    /// ([`Walker::secret_fields`]).
    fn shape(&mut self, doc: &Doc<'_>, object: NodeId) -> Option<(&'static [&'static str], bool)> {
        let (mut dollar_schema, mut typed, mut properties) = (None, false, false);
        let mut terraform = false;
        let (mut named, mut has_value, mut said) = (false, false, None);
        for child in doc.children(object) {
            let facts = self.key_facts(doc, child);
            let text = || doc.str(child);
            match facts.shape {
                Shape::DollarSchema => {
                    dollar_schema.get_or_insert_with(|| doc.str(child).is_some());
                }
                Shape::Type => typed = schema::is_type_name(doc, child),
                Shape::Properties => properties = doc.kind(child) == Kind::Object,
                Shape::TerraformMarks => terraform = true,
                Shape::Other => {}
            }
            if said.is_some() {
                continue;
            }
            match facts.field {
                Field::Value => has_value = true,
                Field::Name => {
                    named |= text().is_some_and(|name| self.rules.keys.is_sensitive(&name));
                }
                // AWS SSM parameters, 1Password fields.
                Field::Type => {
                    named |= text().is_some_and(|t| is_concealed_type(&t));
                }
                // Terraform outputs.
                Field::Sensitive => named |= doc.kind(child) == Kind::Bool(true),
                Field::Kty => said = Some(&JWK_PRIVATE_KEYS[..]),
                // A Kubernetes Secret: everything under `data`/`stringData` is secret.
                Field::Kind if text().is_some_and(|k| k == "Secret") => {
                    said = Some(&SECRET_DATA_KEYS[..]);
                }
                Field::Kind | Field::Other => {}
            }
        }
        if dollar_schema.unwrap_or(typed && properties) {
            return None;
        }
        let fields = said.unwrap_or(if named && has_value { &VALUE_KEYS } else { &[] });
        Some((fields, terraform))
    }

    /// How a member of a data object is read.
    fn member_place(
        &self,
        doc: &Doc<'_>,
        child: NodeId,
        key: &str,
        secret_fields: &[&str],
    ) -> Place {
        if self.rules.keys.is_sensitive(key)
            || (!secret_fields.is_empty() && NormKey::new(key).is_any(secret_fields))
            || (self.rules.keys.is_weak(key) && generated(doc, child))
        {
            Place::Secret
        } else if key
            .as_bytes()
            .last()
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'))
            && schema::is_schema_key(&NormKey::new(key))
            && schema::can_be_schema(doc, child)
        {
            Place::Schema { secret_name: false }
        } else {
            Place::Data
        }
    }

    /// How a member of a schema object is read.
    fn keyword_place(&self, doc: &Doc<'_>, child: NodeId, key: &str, secret_name: bool) -> Place {
        let as_schema = Place::Schema { secret_name };
        match schema::keyword(key) {
            Keyword::Subschema if schema::can_be_schema(doc, child) => as_schema,
            Keyword::Subschema | Keyword::SchemaList if doc.kind(child) == Kind::Array => as_schema,
            Keyword::Instance if secret_name => Place::Secret,
            Keyword::Instance => Place::Data,
            // Not a keyword that holds a schema, or not shaped like one: read as data, a
            // sensitive key included (a mis-detected schema must not hide a secret).
            _ => self.member_place(doc, child, key, &[]),
        }
    }

    /// The (normalised) keys of an object's fields that hold a secret because another
    /// field says so: a name/value pair naming a secret, a Kubernetes Secret, a JWK.
    /// (The reference path's; the walk answers this in [`Walker::shape`].)
    fn secret_fields(&self, doc: &Doc<'_>, object: NodeId) -> &'static [&'static str] {
        let mut named = false;
        let mut has_value = false;
        for child in doc.children(object) {
            let Some(key) = doc.key(child) else { continue };
            // Every field this looks for is short: most keys are dismissed by length.
            if key.len() > MAX_FIELD_KEY {
                continue;
            }
            let text = || doc.str(child);
            match NormKey::new(&key).bytes() {
                b"value" | b"parametervalue" | b"outputvalue" | b"secretvalue" => has_value = true,
                b"name" | b"key" | b"parametername" | b"parameterkey" | b"outputkey"
                | b"variable" | b"label" => {
                    named |= text().is_some_and(|name| self.rules.keys.is_sensitive(&name));
                }
                // AWS SSM parameters, 1Password fields.
                b"type" => named |= text().is_some_and(|t| is_concealed_type(&t)),
                // Terraform outputs.
                b"sensitive" => named |= doc.kind(child) == Kind::Bool(true),
                b"kty" => return &JWK_PRIVATE_KEYS,
                // A Kubernetes Secret: everything under `data`/`stringData` is secret.
                b"kind" if text().is_some_and(|k| k == "Secret") => return &SECRET_DATA_KEYS,
                _ => {}
            }
        }
        if named && has_value { &VALUE_KEYS } else { &[] }
    }

    /// A string under a sensitive key.
    fn secret_string(&mut self, doc: &Doc<'_>, node: NodeId, edits: &mut Edits) {
        let Some(value) = doc.str(node) else { return };
        if value.is_empty() || is_placeholder(value.as_bytes()) || values::is_not_a_secret(&value) {
            return;
        }
        let (start, end) = doc.span(node);
        let style = Style::of(doc.raw(node), &value);
        edits.push(start, end, style.encode(KEY_PLACEHOLDER));
        self.report.hit("json_key");
    }

    /// A string read as data: JSON inside it is masked as JSON, other text by pattern.
    /// A long one that starts like JSON may repeat a container: masked at the end.
    fn data_string(&mut self, doc: &Doc<'_>, node: NodeId, depth: usize, edits: &mut Edits) {
        let raw = doc.raw(node).as_bytes();
        if self.reusing && raw.len() >= MIN_REUSED + 2 && matches!(raw[1], b'{' | b'[') {
            self.reuse.deferred.push((node, depth));
            return;
        }
        self.data_string_now(doc, node, depth, edits);
    }

    fn data_string_now(&mut self, doc: &Doc<'_>, node: NodeId, depth: usize, edits: &mut Edits) {
        let Some(value) = doc.str(node) else { return };
        if let Some(changes) = self.masked_text(&value, depth)
            && let Some(literal) = doc.str_edited(node, changes)
        {
            let (start, end) = doc.span(node);
            edits.push(start, end, literal);
        }
    }

    /// The changes masking makes to a text, or `None` if it holds nothing secret.
    fn masked_text(&mut self, text: &str, depth: usize) -> Option<Edits> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            // Always parsed, not first scanned for keywords: real tool output nearly
            // always holds some key fragment ("author", "monkey"), so a scan would rarely
            // spare the parse, and the parse resolves escapes (`\u0041KIA`) that hide
            // keywords from a scan of the raw text.
            match Doc::parse(text, MAX_DEPTH.saturating_sub(depth + 1)) {
                Ok(inner) => {
                    // A document of its own: its own containers to reuse.
                    let outer = std::mem::take(&mut self.reuse);
                    let mut inner_edits = Edits::default();
                    self.data(&inner, inner.root(), depth + 1, &mut inner_edits);
                    self.masked_deferred(&inner, &mut inner_edits);
                    self.reuse = outer;
                    return (!inner_edits.is_empty()).then_some(inner_edits);
                }
                Err(ParseError::TooDeep) => {
                    self.depth_events += 1;
                    self.report.hit("too_deep");
                    let mut whole = Edits::default();
                    whole.push(0, text.len(), DEPTH_PLACEHOLDER.to_owned());
                    return Some(whole);
                }
                // Not JSON after all: free text. (At another depth the same text might
                // have reached the limit first.)
                Err(ParseError::Syntax(_)) => self.depth_events += 1,
            }
        }
        let ranges = self
            .rules
            .scanner
            .masked_ranges_by(text, self.report, self.path);
        if ranges.is_empty() {
            return None;
        }
        let mut placeholders = Edits::default();
        for (range, rule) in ranges {
            let mut placeholder = String::new();
            super::scan::push_placeholder(&mut placeholder, rule);
            placeholders.push(range.start, range.end, placeholder);
        }
        Some(placeholders)
    }

    /// Maps keyed by credential (`{"ghp_…": {"scopes": …}}`) exist too. Keys under 16
    /// bytes are not scanned: every issued-token format is longer, and nearly every key is
    /// a short identifier (this keeps the walk fast).
    fn scan_key(&mut self, child: NodeId, key: &str, renames: &mut Vec<(NodeId, String)>) {
        if key.len() < MIN_SCANNED_KEY {
            return;
        }
        if let std::borrow::Cow::Owned(masked) =
            self.rules.scanner.mask_by(key, self.report, self.path)
        {
            renames.push((child, masked));
        }
    }

    /// Renames masked keys; two keys masked alike must not collide (a client's parser
    /// would keep only one of them).
    fn rename_keys(
        &mut self,
        doc: &Doc<'_>,
        object: NodeId,
        renames: Vec<(NodeId, String)>,
        edits: &mut Edits,
    ) {
        if renames.is_empty() {
            return;
        }
        let mut taken: Vec<String> = doc
            .children(object)
            .filter(|c| !renames.iter().any(|(renamed, _)| renamed == c))
            .filter_map(|c| doc.key(c).map(|k| k.into_owned()))
            .collect();
        for (child, base) in renames {
            let mut name = base.clone();
            let mut n = 1;
            while taken.contains(&name) {
                n += 1;
                name = format!("{base}#{n}");
            }
            if let Some((start, end)) = doc.key_span(child) {
                let raw = &doc.text()[start..end];
                let old = doc.key(child).unwrap_or_default();
                edits.push(start, end, Style::of(raw, &old).encode(&name));
            }
            taken.push(name);
        }
    }
}

/// Under a weak key (`SENDGRID_KEY`, `tokens`): a string, or a non-empty array of
/// strings, that all look generated ([`values::looks_generated`]). Numbers, objects and
/// words (`"max_tokens": 4096`, `"cache_key": "users:v2"`) are read as data.
fn generated(doc: &Doc<'_>, node: NodeId) -> bool {
    match doc.kind(node) {
        Kind::String { .. } => doc.str(node).is_some_and(|v| values::looks_generated(&v)),
        Kind::Array => {
            let mut items = doc.children(node).peekable();
            items.peek().is_some()
                && items.all(|item| {
                    matches!(doc.kind(item), Kind::String { .. })
                        && doc.str(item).is_some_and(|v| values::looks_generated(&v))
                })
        }
        _ => false,
    }
}

/// A `type` that says its object's `value` is secret: an AWS SSM `SecureString`, a
/// 1Password (`op item get --format json`) `CONCEALED` field.
fn is_concealed_type(t: &str) -> bool {
    t.eq_ignore_ascii_case("SecureString") || t.eq_ignore_ascii_case("CONCEALED")
}
