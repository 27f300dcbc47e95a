//! Template service v2 outputs: Handlebars texts rendered with the `handlebars` crate and Extra
//! Horizon's helpers, with the inputs at `@inputs` (and at the root).
//!
//! The helpers here are the logic, comparison, arithmetic, array and JSON helpers, and `t` (a
//! localization's text in the requested language, `EN` as the fallback, `{{name}}` placeholders
//! filled from the helper's hash). Values print as JavaScript prints them (`3`, not `3.0`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson, Template,
};
use serde_json::{Value, json};

/// Which output of a template failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError {
    pub output: String,
    pub message: String,
}

/// Localization texts by key, then by upper-case language code.
pub type Texts = BTreeMap<String, BTreeMap<String, String>>;

/// The key of the data root under which the inputs are too, for a bare `@inputs`.
const INPUTS: &str = "__inputs";

/// `text` as the registry compiles it: `@inputs` is the root of the data inside every tag
/// (`{{@inputs.name}}` → `{{@root.name}}`, a bare `@inputs` → `@root.__inputs`), since the crate
/// reads only the first segment of a `@` variable and no bare `@root`.
fn prepared(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let close = tag.find("}}").map_or(tag.len(), |close| close + 2);
        let mut inside = &tag[..close];
        while let Some(at) = inside.find("@inputs") {
            out.push_str(&inside[..at]);
            inside = &inside[at + "@inputs".len()..];
            if inside.starts_with('.') {
                out.push_str("@root");
            } else {
                out.push_str("@root.");
                out.push_str(INPUTS);
            }
        }
        out.push_str(inside);
        rest = &tag[close..];
    }
    out.push_str(rest);
    out
}

/// Why `outputs` do not compile, if one does not (the first, by name).
pub fn check(outputs: &BTreeMap<String, String>) -> Result<(), OutputError> {
    for (output, text) in outputs {
        Template::compile(&prepared(text)).map_err(|error| OutputError {
            output: output.clone(),
            message: error.to_string(),
        })?;
    }
    Ok(())
}

/// The localization keys `outputs` name literally (`{{t 'key'`), to fetch before rendering.
pub fn literal_keys(outputs: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for text in outputs.values() {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("t ") {
            let before = rest[..at].trim_end_matches(' ');
            rest = &rest[at + 2..];
            if !(before.ends_with("{{") || before.ends_with('(') || before.ends_with("{{{")) {
                continue;
            }
            let quoted = rest.trim_start();
            let Some(quote) = quoted.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(end) = quoted[1..].find(quote) {
                keys.insert(quoted[1..=end].to_owned());
            }
        }
    }
    keys
}

/// The rendering of `outputs` with `inputs`, in `language`, with `texts` for `t`; or which
/// output failed. Keys `t` asked for that `texts` lacks are returned beside (to fetch and render
/// again): their texts render as the key, as i18next does.
pub fn render(
    outputs: &BTreeMap<String, String>,
    inputs: &Value,
    language: &str,
    texts: &Texts,
) -> (
    Result<BTreeMap<String, String>, OutputError>,
    BTreeSet<String>,
) {
    let missing = Mutex::new(BTreeSet::new());
    let result = {
        let mut registry = Handlebars::new();
        registry.register_helper(
            "t",
            Box::new(Translate {
                language,
                texts,
                missing: &missing,
            }),
        );
        for (name, helper) in HELPERS {
            registry.register_helper(name, Box::new(*helper));
        }
        let data = match inputs {
            Value::Object(fields) => {
                let mut data = fields.clone();
                data.insert(INPUTS.into(), inputs.clone());
                Value::Object(data)
            }
            _ => json!({ INPUTS: {} }),
        };
        outputs
            .iter()
            .map(|(output, text)| {
                registry
                    .render_template(&prepared(text), &data)
                    .map(|rendered| (output.clone(), rendered))
                    .map_err(|error| OutputError {
                        output: output.clone(),
                        message: error.to_string(),
                    })
            })
            .collect()
    };
    (result, missing.into_inner().unwrap_or_default())
}

/// A value as JavaScript's `String()` prints it (integers without `.0`, arrays joined by `,`).
fn js_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => number_json(as_number(value)).to_string(),
        Value::Array(items) => items.iter().map(js_string).collect::<Vec<_>>().join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// A number as JSON: an integer when it is one (so it prints as JavaScript prints it).
fn number_json(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9_007_199_254_740_992.0 {
        // Exact: an integer below 2^53.
        #[allow(clippy::cast_possible_truncation)]
        let integer = number as i64;
        json!(integer)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// A value as a JavaScript number (`Number(x)`; `NaN` for what is none).
fn as_number(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Null => 0.0,
        Value::String(text) if text.trim().is_empty() => 0.0,
        Value::String(text) => text.trim().parse().unwrap_or(f64::NAN),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

/// JavaScript truthiness.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's loose equality, for the values JSON has.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => a == b,
        _ => as_number(a) == as_number(b),
    }
}

/// JavaScript's relational comparison: strings by code units, the rest as numbers.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        _ => as_number(a).partial_cmp(&as_number(b)),
    }
}

/// Extra Horizon's helpers (other than `t`).
#[derive(Debug, Clone, Copy)]
enum Helping {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Includes,
    Sum,
    Subtract,
    Multiply,
    Divide,
    Mod,
    Round,
    Floor,
    Ceil,
    Length,
    Join,
    ToJsonString,
}

const HELPERS: &[(&str, Helping)] = &[
    ("and", Helping::And),
    ("or", Helping::Or),
    ("not", Helping::Not),
    ("eq", Helping::Eq),
    ("ne", Helping::Ne),
    ("gt", Helping::Gt),
    ("ge", Helping::Ge),
    ("lt", Helping::Lt),
    ("le", Helping::Le),
    ("includes", Helping::Includes),
    ("sum", Helping::Sum),
    ("subtract", Helping::Subtract),
    ("multiply", Helping::Multiply),
    ("divide", Helping::Divide),
    ("mod", Helping::Mod),
    ("round", Helping::Round),
    ("floor", Helping::Floor),
    ("ceil", Helping::Ceil),
    ("length", Helping::Length),
    ("join", Helping::Join),
    ("toJsonString", Helping::ToJsonString),
];

impl Helping {
    /// Whether the helper answers true or false, and so may be a block.
    fn is_test(self) -> bool {
        matches!(
            self,
            Self::And
                | Self::Or
                | Self::Not
                | Self::Eq
                | Self::Ne
                | Self::Gt
                | Self::Ge
                | Self::Lt
                | Self::Le
                | Self::Includes
        )
    }

    fn value(
        self,
        name: &str,
        params: &[&Value],
        hash: &BTreeMap<&str, &Value>,
    ) -> Result<Value, RenderError> {
        let needs = |count: usize| {
            if params.len() < count {
                Err(RenderErrorReason::ParamNotFoundForIndex(
                    "helper",
                    params.len(),
                ))
            } else {
                Ok(())
            }
        };
        let numbers = || params.iter().map(|value| as_number(value));
        let ordered = |test: fn(std::cmp::Ordering) -> bool| -> Result<Value, RenderError> {
            needs(2)?;
            Ok(Value::Bool(compare(params[0], params[1]).is_some_and(test)))
        };
        Ok(match self {
            Self::And => {
                needs(2)?;
                Value::Bool(params.iter().all(|value| truthy(value)))
            }
            Self::Or => {
                needs(2)?;
                Value::Bool(params.iter().any(|value| truthy(value)))
            }
            Self::Not => {
                needs(1)?;
                Value::Bool(!truthy(params[0]))
            }
            Self::Eq => {
                needs(2)?;
                Value::Bool(loosely_equal(params[0], params[1]))
            }
            Self::Ne => {
                needs(2)?;
                Value::Bool(!loosely_equal(params[0], params[1]))
            }
            Self::Gt => ordered(std::cmp::Ordering::is_gt)?,
            Self::Ge => ordered(std::cmp::Ordering::is_ge)?,
            Self::Lt => ordered(std::cmp::Ordering::is_lt)?,
            Self::Le => ordered(std::cmp::Ordering::is_le)?,
            Self::Includes => {
                needs(2)?;
                Value::Bool(match params[0] {
                    Value::Array(items) => items.iter().any(|item| item == params[1]),
                    Value::String(text) => text.contains(&js_string(params[1])),
                    _ => false,
                })
            }
            Self::Sum => number_json(numbers().sum()),
            Self::Multiply => number_json(numbers().product()),
            Self::Subtract | Self::Divide => {
                needs(1)?;
                let mut all = numbers();
                let first = all.next().unwrap_or(f64::NAN);
                number_json(all.fold(first, |acc, n| match self {
                    Self::Subtract => acc - n,
                    _ => acc / n,
                }))
            }
            Self::Mod => {
                needs(2)?;
                number_json(as_number(params[0]) % as_number(params[1]))
            }
            // JavaScript's `Math.round`: halves toward +∞.
            Self::Round => {
                needs(1)?;
                number_json((as_number(params[0]) + 0.5).floor())
            }
            Self::Floor => {
                needs(1)?;
                number_json(as_number(params[0]).floor())
            }
            Self::Ceil => {
                needs(1)?;
                number_json(as_number(params[0]).ceil())
            }
            Self::Length => {
                needs(1)?;
                match params[0] {
                    Value::Array(items) => json!(items.len()),
                    Value::String(text) => json!(text.encode_utf16().count()),
                    Value::Object(fields) => json!(fields.len()),
                    _ => json!(0),
                }
            }
            Self::Join => {
                let separator = hash
                    .get("sep")
                    .map_or_else(|| ", ".to_owned(), |sep| js_string(sep));
                let items: Vec<String> = match params {
                    [Value::Array(items)] => items.iter().map(js_string).collect(),
                    params => params.iter().map(|value| js_string(value)).collect(),
                };
                Value::String(items.join(&separator))
            }
            // `JSON.stringify`, safe inside a `<script>` element.
            Self::ToJsonString => {
                needs(1)?;
                let json = serde_json::to_string(params[0])
                    .map_err(|error| RenderErrorReason::Other(format!("{name}: {error}")))?;
                Value::String(json.replace("</script", "<\\/script"))
            }
        })
    }
}

impl HelperDef for Helping {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params: Vec<&Value> = h.params().iter().map(|param| param.value()).collect();
        let hash: BTreeMap<&str, &Value> = h.hash().iter().map(|(k, v)| (*k, v.value())).collect();
        Ok(ScopedJson::Derived(self.value(h.name(), &params, &hash)?))
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = self.call_inner(h, r, ctx, rc)?;
        let value = value.as_json();
        if self.is_test() && h.is_block() {
            let branch = if truthy(value) {
                h.template()
            } else {
                h.inverse()
            };
            return match branch {
                Some(branch) => branch.render(r, ctx, rc, out),
                None => Ok(()),
            };
        }
        let text = js_string(value);
        if rc.is_disable_escape() {
            out.write(&text)?;
        } else {
            out.write(&r.get_escape_fn()(&text))?;
        }
        Ok(())
    }
}

/// `{{t 'key' name=value}}`: the localization's text in the language (`EN` when it has none
/// there), its `{{name}}` placeholders filled from the hash (those not given are left as they
/// are); the key itself when there is no such localization.
struct Translate<'a> {
    language: &'a str,
    texts: &'a Texts,
    missing: &'a Mutex<BTreeSet<String>>,
}

impl HelperDef for Translate<'_> {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let key = h
            .param(0)
            .map(|param| js_string(param.value()))
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("t", 0))?;
        let Some(texts) = self.texts.get(&key) else {
            if let Ok(mut missing) = self.missing.lock() {
                missing.insert(key.clone());
            }
            return Ok(ScopedJson::Derived(Value::String(key)));
        };
        let text = texts
            .get(self.language)
            .or_else(|| texts.get(vigil_domain::localizations::DEFAULT_LANGUAGE))
            .cloned()
            .unwrap_or_default();
        Ok(ScopedJson::Derived(Value::String(interpolated(&text, h))))
    }
}

/// `text` with each `{{name}}` whose name the helper's hash gives replaced by its value.
fn interpolated(text: &str, h: &Helper<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let tag = &rest[open + 2..];
        let Some(close) = tag.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = tag[..close].trim();
        match h.hash_get(name) {
            Some(value) => out.push_str(&js_string(value.value())),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &tag[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect()
    }

    fn one(text: &str, inputs: Value) -> String {
        let (rendered, _) = render(&outputs(&[("o", text)]), &inputs, "EN", &Texts::new());
        rendered.unwrap()["o"].clone()
    }

    #[test]
    fn inputs_are_at_inputs_and_at_the_root() {
        let inputs =
            json!({"first_name": "Jane", "items": [{"n": 1}, {"n": 2}], "tags": ["a", "b"]});
        assert_eq!(
            one("Dear, {{@inputs.first_name}}", inputs.clone()),
            "Dear, Jane"
        );
        assert_eq!(one("{{first_name}}", inputs.clone()), "Jane");
        assert_eq!(
            one(
                "{{#each @inputs.items}}{{n}}-{{@inputs.first_name}};{{/each}}",
                inputs.clone()
            ),
            "1-Jane;2-Jane;"
        );
        assert_eq!(
            one("@inputs {{ @inputs.first_name }}", inputs),
            "@inputs Jane"
        );
        assert_eq!(
            one(
                "{{#each @inputs.tags}}{{{toJsonString @inputs}}}{{/each}}",
                json!({"tags": [1]})
            ),
            "{\"tags\":[1]}"
        );
    }

    #[test]
    fn helpers_work_inline_as_blocks_and_as_subexpressions() {
        let inputs =
            json!({"price": 4, "tax": 1, "cash": 5, "tags": ["tag_1", "x"], "title": "Admin page"});
        assert_eq!(
            one(
                "{{sum 2 3 4}} {{subtract 10 3 2}} {{multiply 2 3 4}} {{divide 20 2 2}} {{mod 10 3}}",
                json!({})
            ),
            "9 5 24 5 1"
        );
        assert_eq!(
            one(
                "{{round 4.5}} {{round -4.5}} {{floor 4.8}} {{ceil 4.2}} {{divide 1 4}}",
                json!({})
            ),
            "5 -4 4 5 0.25"
        );
        assert_eq!(
            one(
                "{{#le (sum @inputs.price @inputs.tax) @inputs.cash}}Buy{{else}}Don't buy{{/le}}",
                inputs.clone()
            ),
            "Buy"
        );
        assert_eq!(
            one(
                "{{eq 1 1}} {{ne 1 \"1\"}} {{gt 2 1}} {{and true 0}} {{or 0 \"x\"}} {{not 0}}",
                json!({})
            ),
            "true false true false true true"
        );
        assert_eq!(
            one("{{#if (eq @inputs.cash 5)}}five{{/if}}", inputs.clone()),
            "five"
        );
        assert_eq!(
            one(
                "{{#includes @inputs.tags \"tag_1\"}}Has the tag{{else}}No{{/includes}} {{includes @inputs.title \"Admin\"}}",
                inputs.clone()
            ),
            "Has the tag true"
        );
        assert_eq!(
            one(
                "{{length @inputs.tags}} {{length @inputs.title}}",
                inputs.clone()
            ),
            "2 10"
        );
        assert_eq!(
            one(
                "{{join @inputs.tags sep=' - '}}|{{join @inputs.tags}}|{{join \"apple\" \"banana\" sep='/'}}",
                inputs.clone()
            ),
            "tag_1 - x|tag_1, x|apple/banana"
        );
        assert_eq!(
            one("{{{toJsonString @inputs.tags}}}", inputs.clone()),
            "[\"tag_1\",\"x\"]"
        );
        assert_eq!(
            one("{{toJsonString @inputs.tags}}", inputs),
            "[&quot;tag_1&quot;,&quot;x&quot;]"
        );
    }

    #[test]
    fn t_translates_with_named_arguments_and_falls_back_to_english() {
        let texts: Texts = [(
            "heart_rate".to_owned(),
            [
                (
                    "EN".to_owned(),
                    "On {{date}}, your heart rate was {{rate}} bpm.".to_owned(),
                ),
                (
                    "NL".to_owned(),
                    "Uw hartslag was {{rate}} spm op {{date}}.".to_owned(),
                ),
            ]
            .into(),
        )]
        .into();
        let template = outputs(&[(
            "m",
            "{{t 'heart_rate' date=@inputs.date rate=@inputs.rate}} {{t 'nowhere'}}",
        )]);
        let inputs = json!({"date": "06/10/2021", "rate": 63});
        let (dutch, missing) = render(&template, &inputs, "NL", &texts);
        assert_eq!(
            dutch.unwrap()["m"],
            "Uw hartslag was 63 spm op 06/10/2021. nowhere"
        );
        assert_eq!(missing, BTreeSet::from(["nowhere".to_owned()]));
        let (german, _) = render(&template, &inputs, "DE", &texts);
        assert_eq!(
            german.unwrap()["m"],
            "On 06/10/2021, your heart rate was 63 bpm. nowhere"
        );
        assert_eq!(
            literal_keys(&template),
            BTreeSet::from(["heart_rate".to_owned(), "nowhere".to_owned()])
        );
    }

    #[test]
    fn syntax_and_render_errors_name_their_output() {
        let error = check(&outputs(&[("body", "fine"), ("subject", "{{#if x}}open")])).unwrap_err();
        assert_eq!(error.output, "subject");
        let (rendered, _) = render(
            &outputs(&[("body", "{{number 3}}")]),
            &json!({}),
            "EN",
            &Texts::new(),
        );
        assert_eq!(rendered.unwrap_err().output, "body");
    }
}
