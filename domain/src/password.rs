//! The password policy every new password must meet (Extra Horizon's `password_policy`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PasswordPolicy {
    pub minimum_length: usize,
    pub maximum_length: usize,
    pub upper_case_required: bool,
    pub lower_case_required: bool,
    pub symbol_required: bool,
    pub number_required: bool,
}

impl Default for PasswordPolicy {
    /// Extra Horizon's default: 8 to 128 characters, no character classes required.
    fn default() -> Self {
        Self {
            minimum_length: 8,
            maximum_length: 128,
            upper_case_required: false,
            lower_case_required: false,
            symbol_required: false,
            number_required: false,
        }
    }
}

impl PasswordPolicy {
    /// `Ok` if `password` meets the policy, else what it lacks.
    pub fn check(&self, password: &str) -> Result<(), String> {
        let length = password.chars().count();
        if length < self.minimum_length || length > self.maximum_length {
            return Err(format!(
                "The password must be {} to {} characters long",
                self.minimum_length, self.maximum_length
            ));
        }
        let rules = [
            (
                self.upper_case_required,
                "an upper-case letter",
                char::is_uppercase as fn(char) -> bool,
            ),
            (
                self.lower_case_required,
                "a lower-case letter",
                char::is_lowercase,
            ),
            (self.number_required, "a number", |c: char| {
                c.is_ascii_digit()
            }),
            (self.symbol_required, "a symbol", |c: char| {
                !c.is_alphanumeric() && !c.is_whitespace()
            }),
        ];
        for (required, what, holds) in rules {
            if required && !password.chars().any(holds) {
                return Err(format!("The password must contain {what}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_needs_only_a_length() {
        let policy = PasswordPolicy::default();
        assert!(policy.check("abcdefgh").is_ok());
        assert!(policy.check("abcdefg").is_err());
        assert!(policy.check(&"a".repeat(129)).is_err());
    }

    #[test]
    fn required_character_classes_are_checked() {
        let policy = PasswordPolicy {
            upper_case_required: true,
            number_required: true,
            symbol_required: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            policy.check("abcdefgh"),
            Err("The password must contain an upper-case letter".into())
        );
        assert_eq!(
            policy.check("Abcdefgh1"),
            Err("The password must contain a symbol".into())
        );
        assert!(policy.check("Abcdefgh1!").is_ok());
    }

    proptest! {
        #[test]
        fn the_length_rule_counts_characters_not_bytes(password in "\\PC{0,140}") {
            let length = password.chars().count();
            let accepted = PasswordPolicy::default().check(&password).is_ok();
            prop_assert_eq!(accepted, (8..=128).contains(&length));
        }
    }
}
