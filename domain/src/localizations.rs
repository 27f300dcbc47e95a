//! The localization service (`/localizations/v1`): texts by key in many languages, which
//! templates and mails are filled with.
//!
//! Every localization of a deployment is in one aggregate, the [`Catalog`] (one stream): a bulk
//! request is one commit, all of it or nothing. Keys are unique, every localization has a text in
//! [`DEFAULT_LANGUAGE`] (the language every request falls back to), and languages are ISO 639-1
//! codes in upper case, as Extra Horizon has them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::StreamId;

/// The language every localization has a text in, and every request falls back to.
pub const DEFAULT_LANGUAGE: &str = "EN";
/// The longest key.
pub const KEY_CHARS: usize = 1000;
/// The most bytes of texts and keys one request may write (a commit stays well under the log's
/// message limit).
pub const REQUEST_BYTES: usize = 512 * 1024;
/// ISO 639-1 codes withdrawn from the standard that Extra Horizon still accepts.
const WITHDRAWN_LANGUAGES: [&str; 6] = ["IN", "IW", "JI", "JW", "MO", "SH"];

/// A localization's texts, by language.
pub type Texts = BTreeMap<String, String>;

/// A localization: its key and its texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Localization {
    pub key: String,
    pub text: Texts,
}

/// Localizations created, or updated (with every text each has now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LocalizationsWritten {
    pub localizations: Vec<Localization>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LocalizationsDeleted {
    pub keys: Vec<String>,
}

events! {
    pub enum LocalizationEvent {
        Created(LocalizationsWritten) = "localization.created",
        Updated(LocalizationsWritten) = "localization.updated",
        Deleted(LocalizationsDeleted) = "localization.deleted",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LocalizationCommand {
    /// Creates these localizations, none of which may exist.
    Create(Vec<Localization>),
    /// Sets these texts of these localizations, all of which must exist (the languages not
    /// given keep their texts).
    Update(Vec<Localization>),
    /// Deletes the localizations with these keys that exist.
    Delete(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalizationError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("The default localization text needs to be set ({DEFAULT_LANGUAGE})")]
    DefaultMissing,
    #[error("the key `{0}` is given more than once")]
    DuplicateKeys(String),
    /// Told apart from the other refusals so a request can decide again on what exists now.
    #[error("the localization `{0}` exists already")]
    Exists(String),
    #[error("no localization has the key `{0}`")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for LocalizationError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::DefaultMissing => ExhCode::DefaultLocalizationMissing,
            Self::DuplicateKeys(_) => ExhCode::DuplicateLocalizationInputKeys,
            Self::Exists(_) => ExhCode::ResourceAlreadyExists,
            Self::Missing(_) => ExhCode::ResourceUnknown,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// Whether `code` is a language a text may be in: an upper-case ISO 639-1 code (or one of the
/// withdrawn codes Extra Horizon accepts).
pub fn is_language(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && (isolang::Language::from_639_1(&code.to_ascii_lowercase()).is_some()
            || WITHDRAWN_LANGUAGES.contains(&code))
}

/// Every language a text may be in, in alphabetical order.
pub fn languages() -> Vec<String> {
    let mut codes: BTreeSet<String> = isolang::languages()
        .filter_map(|language| language.to_639_1())
        .map(str::to_ascii_uppercase)
        .collect();
    codes.extend(WITHDRAWN_LANGUAGES.iter().map(|code| (*code).to_owned()));
    codes.into_iter().collect()
}

/// Why `key` cannot be a localization's key, if it cannot.
fn check_key(key: &str) -> Result<(), LocalizationError> {
    if key.is_empty()
        || key.chars().count() > KEY_CHARS
        || key.contains(',')
        || key.chars().any(char::is_control)
    {
        return Err(LocalizationError::Invalid(format!(
            "a key is 1 to {KEY_CHARS} characters without `,` (which separates a requested key \
             from its arguments) or control characters; `{key}` is not"
        )));
    }
    Ok(())
}

/// Why `localizations` (of one request) cannot be written, if they cannot: a key twice, a key or
/// a language that cannot be, too much at once, or (`created`) one without a text in
/// [`DEFAULT_LANGUAGE`].
pub fn check(localizations: &[Localization], created: bool) -> Result<(), LocalizationError> {
    if created
        && localizations
            .iter()
            .any(|localization| !localization.text.contains_key(DEFAULT_LANGUAGE))
    {
        return Err(LocalizationError::DefaultMissing);
    }
    let mut keys = BTreeSet::new();
    let mut bytes = 0;
    for localization in localizations {
        check_key(&localization.key)?;
        if !keys.insert(localization.key.as_str()) {
            return Err(LocalizationError::DuplicateKeys(localization.key.clone()));
        }
        if let Some(language) = localization.text.keys().find(|code| !is_language(code)) {
            return Err(LocalizationError::Invalid(format!(
                "`{language}` (of `{}`) is not an upper-case ISO 639-1 language code",
                localization.key
            )));
        }
        bytes += localization.key.len()
            + localization
                .text
                .iter()
                .map(|(code, text)| code.len() + text.len())
                .sum::<usize>();
    }
    if bytes > REQUEST_BYTES {
        return Err(LocalizationError::Invalid(format!(
            "one request writes at most {REQUEST_BYTES} bytes of keys and texts; this one {bytes}: \
             send them in smaller requests"
        )));
    }
    Ok(())
}

/// Every localization of the deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub localizations: BTreeMap<String, Texts>,
}

impl Catalog {
    /// The catalog's stream (there is one).
    pub fn stream() -> StreamId {
        StreamId::from_trusted_parts(Self::KIND, "catalog".to_owned())
    }
}

impl Aggregate for Catalog {
    const KIND: &'static str = "localizations";
    type Command = LocalizationCommand;
    type Event = LocalizationEvent;
    type Error = LocalizationError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let permission = match command {
            LocalizationCommand::Create(_) => "CREATE_LOCALIZATIONS",
            LocalizationCommand::Update(_) => "UPDATE_LOCALIZATIONS",
            LocalizationCommand::Delete(_) => "DELETE_LOCALIZATIONS",
        };
        ctx.actor
            .require(permission, LocalizationError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match command {
            LocalizationCommand::Create(localizations) => {
                check(localizations, true)?;
                if let Some(existing) = localizations
                    .iter()
                    .find(|localization| self.localizations.contains_key(&localization.key))
                {
                    return Err(LocalizationError::Exists(existing.key.clone()));
                }
                if localizations.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![LocalizationEvent::Created(LocalizationsWritten {
                    localizations: localizations.clone(),
                })])
            }
            LocalizationCommand::Update(localizations) => {
                check(localizations, false)?;
                let mut updated = Vec::new();
                for localization in localizations {
                    let Some(texts) = self.localizations.get(&localization.key) else {
                        return Err(LocalizationError::Missing(localization.key.clone()));
                    };
                    let mut text = texts.clone();
                    text.extend(localization.text.clone());
                    if text != *texts {
                        updated.push(Localization {
                            key: localization.key.clone(),
                            text,
                        });
                    }
                }
                if updated.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![LocalizationEvent::Updated(LocalizationsWritten {
                    localizations: updated,
                })])
            }
            LocalizationCommand::Delete(keys) => {
                let keys: BTreeSet<&String> = keys
                    .iter()
                    .filter(|key| self.localizations.contains_key(*key))
                    .collect();
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(vec![LocalizationEvent::Deleted(LocalizationsDeleted {
                    keys: keys.into_iter().cloned().collect(),
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            LocalizationEvent::Created(written) | LocalizationEvent::Updated(written) => {
                for localization in &written.localizations {
                    self.localizations
                        .insert(localization.key.clone(), localization.text.clone());
                }
            }
            LocalizationEvent::Deleted(deleted) => {
                for key in &deleted.keys {
                    self.localizations.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;
    use proptest::prelude::*;

    fn localization(key: &str, texts: &[(&str, &str)]) -> Localization {
        Localization {
            key: key.into(),
            text: texts
                .iter()
                .map(|(code, text)| ((*code).to_owned(), (*text).to_owned()))
                .collect(),
        }
    }

    fn created(localizations: Vec<Localization>) -> LocalizationEvent {
        LocalizationEvent::Created(LocalizationsWritten { localizations })
    }

    fn invalid(result: Result<Vec<LocalizationEvent>, LocalizationError>) -> bool {
        matches!(result, Err(LocalizationError::Invalid(_)))
    }

    #[test]
    fn languages_are_upper_case_iso_639_1_codes() {
        for code in ["EN", "NL", "FR", "ZU", "IW"] {
            assert!(is_language(code), "{code}");
        }
        for code in ["en", "XX", "E", "ENG", "", "Nl"] {
            assert!(!is_language(code), "{code}");
        }
        let all = languages();
        assert!(all.len() > 180 && all.iter().all(|code| is_language(code)));
    }

    #[test]
    fn created_localizations_need_a_default_text_and_new_unique_keys() {
        given::<Catalog>(&[])
            .when(LocalizationCommand::Create(vec![localization(
                "a",
                &[("NL", "hallo")],
            )]))
            .then_err(LocalizationError::DefaultMissing);
        given::<Catalog>(&[])
            .when(LocalizationCommand::Create(vec![
                localization("a", &[("EN", "hi")]),
                localization("a", &[("EN", "hello")]),
            ]))
            .then_err(LocalizationError::DuplicateKeys("a".into()));
        given::<Catalog>(&[created(vec![localization("a", &[("EN", "hi")])])])
            .when(LocalizationCommand::Create(vec![localization(
                "a",
                &[("EN", "hello")],
            )]))
            .then_err(LocalizationError::Exists("a".into()));
        for bad in [
            localization("a", &[("EN", "hi"), ("xx", "?")]),
            localization("a,b", &[("EN", "hi")]),
            localization("", &[("EN", "hi")]),
        ] {
            let decided = given::<Catalog>(&[])
                .when(LocalizationCommand::Create(vec![bad]))
                .events_or_error();
            assert!(invalid(decided));
        }
        let huge = localization("a", &[("EN", &"x".repeat(REQUEST_BYTES))]);
        let decided = given::<Catalog>(&[])
            .when(LocalizationCommand::Create(vec![huge]))
            .events_or_error();
        assert!(invalid(decided));
    }

    #[test]
    fn writing_needs_the_permission_for_it() {
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        for (command, permission) in [
            (LocalizationCommand::Create(vec![]), "CREATE_LOCALIZATIONS"),
            (LocalizationCommand::Update(vec![]), "UPDATE_LOCALIZATIONS"),
            (LocalizationCommand::Delete(vec![]), "DELETE_LOCALIZATIONS"),
        ] {
            given::<Catalog>(&[])
                .by(nobody.clone())
                .when(command)
                .then_err(LocalizationError::NoPermission(permission));
        }
    }

    #[test]
    fn an_update_sets_the_languages_given_and_keeps_the_others() {
        given::<Catalog>(&[created(vec![localization(
            "a",
            &[("EN", "hi"), ("NL", "hoi")],
        )])])
        .when(LocalizationCommand::Update(vec![localization(
            "a",
            &[("NL", "hallo")],
        )]))
        .then(&[LocalizationEvent::Updated(LocalizationsWritten {
            localizations: vec![localization("a", &[("EN", "hi"), ("NL", "hallo")])],
        })]);
        given::<Catalog>(&[created(vec![localization("a", &[("EN", "hi")])])])
            .when(LocalizationCommand::Update(vec![localization(
                "a",
                &[("EN", "hi")],
            )]))
            .then(&[]);
        given::<Catalog>(&[])
            .when(LocalizationCommand::Update(vec![localization(
                "a",
                &[("EN", "hi")],
            )]))
            .then_err(LocalizationError::Missing("a".into()));
    }

    #[test]
    fn a_delete_names_only_the_keys_that_exist() {
        given::<Catalog>(&[created(vec![
            localization("a", &[("EN", "1")]),
            localization("b", &[("EN", "2")]),
        ])])
        .when(LocalizationCommand::Delete(vec![
            "b".into(),
            "c".into(),
            "b".into(),
        ]))
        .then(&[LocalizationEvent::Deleted(LocalizationsDeleted {
            keys: vec!["b".into()],
        })]);
    }

    proptest! {
        /// Whatever is created, updated and deleted, the catalog holds exactly the keys created
        /// and not deleted, each with its default text.
        #[test]
        fn the_catalog_holds_what_was_written(
            keys in proptest::collection::btree_set("[a-z]{1,3}", 0..12),
            deleted in proptest::collection::vec("[a-z]{1,3}", 0..6),
            dutch in proptest::collection::btree_set("[a-z]{1,3}", 0..6),
        ) {
            let mut history = Vec::new();
            let commands = [
                LocalizationCommand::Create(
                    keys.iter().map(|key| localization(key, &[("EN", key)])).collect(),
                ),
                LocalizationCommand::Update(
                    dutch.iter().filter(|key| keys.contains(*key))
                        .map(|key| localization(key, &[("NL", "nl")])).collect(),
                ),
                LocalizationCommand::Delete(deleted.clone()),
            ];
            for command in commands {
                let events = given::<Catalog>(&history).when(command).events();
                history.extend(events);
            }
            let catalog = Catalog::fold(&history);
            let expected: BTreeSet<&String> =
                keys.iter().filter(|key| !deleted.contains(key)).collect();
            prop_assert_eq!(catalog.localizations.keys().collect::<BTreeSet<_>>(), expected);
            for (key, texts) in &catalog.localizations {
                prop_assert_eq!(texts.get(DEFAULT_LANGUAGE), Some(key));
                prop_assert_eq!(texts.contains_key("NL"), dutch.contains(key));
            }
        }
    }
}
