//! Permissions: the catalogue of known global permission names, and the set a caller holds.
//!
//! The catalogue is what `GET /users/v1/permissions` lists, what the bootstrapped administrator is
//! given, and what a role may be given: Extra Horizon accepts any string, so a misspelt permission
//! silently grants nothing; Vigil refuses names it does not know ([`check_grantable`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Vigil's own permission: read the commit log over gRPC (auditors, data teams).
pub const VIEW_EVENT_LOG: &str = "VIEW_EVENT_LOG";
/// Vigil's own permission: change when failed logins lock an account (`vigil lockout`).
pub const UPDATE_LOCKOUT_POLICY: &str = "UPDATE_LOCKOUT_POLICY";

/// Every known permission, and whether it also means something inside a group role
/// (Extra Horizon's "staff enlistment" scope).
pub const CATALOGUE: &[(&str, bool)] = &[
    ("CREATE_APPLICATIONS", false),
    ("VIEW_APPLICATIONS", false),
    ("UPDATE_APPLICATIONS", false),
    ("DELETE_APPLICATIONS", false),
    ("VIEW_AUTHORIZATIONS", false),
    ("DELETE_AUTHORIZATIONS", false),
    ("VIEW_OAUTH2_REFRESH_TOKENS", false),
    ("DELETE_OAUTH2_REFRESH_TOKEN", false),
    ("VIEW_USER_MFA_SETTINGS", false),
    ("UPDATE_USER_MFA_SETTINGS", false),
    ("CREATE_OIDC_PROVIDER", false),
    ("VIEW_OIDC_PROVIDERS", false),
    ("UPDATE_OIDC_PROVIDER", false),
    ("DELETE_OIDC_PROVIDER", false),
    ("VIEW_OIDC_LOGIN_ATTEMPTS", false),
    ("UNLINK_USER_FROM_OIDC", false),
    ("VIEW_USER", false),
    ("UPDATE_USER", false),
    ("UPDATE_USER_EMAIL", false),
    ("DELETE_USER", false),
    ("RESET_FAILED_LOGIN_ATTEMPTS", false),
    ("UPDATE_PROFILE_IMAGE", false),
    ("VIEW_PATIENTS", false),
    ("ADD_PATIENT", false),
    ("REMOVE_PATIENT", true),
    ("VIEW_STAFF", false),
    ("ADD_STAFF", true),
    ("REMOVE_STAFF", true),
    ("VIEW_ROLE", false),
    ("CREATE_ROLE", false),
    ("UPDATE_ROLE", false),
    ("DELETE_ROLE", false),
    ("ADD_ROLE_PERMISSION", false),
    ("REMOVE_ROLE_PERMISSION", false),
    ("ADD_ROLE_TO_USER", false),
    ("REMOVE_ROLE_FROM_USER", false),
    ("VIEW_GROUP", false),
    ("CREATE_GROUP_ROLE", true),
    ("UPDATE_GROUP_ROLE", true),
    ("DELETE_GROUP_ROLE", true),
    ("ADD_GROUP_ROLE_PERMISSION", true),
    ("REMOVE_GROUP_ROLE_PERMISSION", true),
    ("ADD_GROUP_ROLE_TO_STAFF", true),
    ("REMOVE_GROUP_ROLE_FROM_STAFF", true),
    ("UPDATE_PASSWORD_POLICY", false),
    ("VIEW_USER_SERVICE_EMAIL_TEMPLATES", false),
    ("UPDATE_USER_SERVICE_EMAIL_TEMPLATES", false),
    ("VIEW_USER_VERIFICATION_SETTINGS", false),
    ("UPDATE_USER_VERIFICATION_SETTINGS", false),
    ("VIEW_ACTIVATION_REQUESTS", false),
    ("DELETE_ACTIVATION_REQUEST", false),
    ("VIEW_FORGOT_PASSWORD_REQUESTS", false),
    ("DELETE_FORGOT_PASSWORD_REQUEST", false),
    ("CREATE_GROUP", false),
    ("UPDATE_GROUP", false),
    ("DELETE_GROUP", false),
    ("VIEW_GROUP_REQUESTS", false),
    ("UPDATE_GROUP_REQUESTS", false),
    ("APPROVE_GROUP_REQUESTS", false),
    ("CREATE_SCHEMAS", false),
    ("UPDATE_SCHEMAS", false),
    ("DELETE_SCHEMAS", false),
    ("DISABLE_SCHEMAS", false),
    ("CREATE_DOCUMENTS", false),
    ("VIEW_DOCUMENTS", true),
    ("UPDATE_DOCUMENTS", true),
    ("TRANSITION_DOCUMENTS", true),
    ("DELETE_DOCUMENTS", true),
    ("UPDATE_ACCESS_TO_DOCUMENT", false),
    ("CREATE_DOCUMENT_COMMENTS", true),
    ("VIEW_DOCUMENT_COMMENTS", true),
    ("UPDATE_DOCUMENT_COMMENTS", true),
    ("VIEW_FILES", false),
    ("VIEW_FILE_SERVICE_SETTINGS", false),
    ("UPDATE_FILE_SERVICE_SETTINGS", false),
    ("VIEW_TASKS", false),
    ("CREATE_TASKS", false),
    ("CANCEL_TASKS", false),
    ("VIEW_TASK_LOGS", false),
    ("VIEW_TASK_FUNCTIONS", false),
    ("VIEW_TASK_FUNCTION_DETAILS", false),
    ("CREATE_TASK_FUNCTION", false),
    ("UPDATE_TASK_FUNCTION", false),
    ("DELETE_TASK_FUNCTION", false),
    ("VIEW_TASK_FUNCTION_LOGS", false),
    ("EXECUTE_TASK_FUNCTION", false),
    ("EXECUTE_API_FUNCTION", false),
    ("VIEW_API_FUNCTION_REQUESTS", false),
    ("VIEW_API_FUNCTION_REQUEST_LOGS", false),
    ("VIEW_TASK_SCHEDULES", false),
    ("CREATE_TASK_SCHEDULE", false),
    ("DELETE_TASK_SCHEDULE", false),
    ("VIEW_DISPATCHERS", false),
    ("CREATE_DISPATCHERS", false),
    ("UPDATE_DISPATCHERS", false),
    ("DELETE_DISPATCHERS", false),
    ("VIEW_EVENTS", false),
    ("CREATE_EVENTS", false),
    ("VIEW_SUBSCRIPTIONS", false),
    ("CREATE_SUBSCRIPTIONS", false),
    ("VIEW_MAILS", false),
    ("SEND_MAILS", false),
    ("DELETE_MAILS", false),
    ("VIEW_TEMPLATES", false),
    ("CREATE_TEMPLATES", false),
    ("UPDATE_TEMPLATES", false),
    ("DELETE_TEMPLATES", false),
    ("RESOLVE_TEMPLATES", false),
    ("CREATE_LOCALIZATIONS", false),
    ("UPDATE_LOCALIZATIONS", false),
    ("DELETE_LOCALIZATIONS", false),
    ("CREATE_NOTIFICATIONS", true),
    ("VIEW_NOTIFICATIONS", false),
    ("DELETE_NOTIFICATIONS", false),
    ("VIEW_NOTIFICATION_SETTINGS", false),
    ("UPDATE_NOTIFICATION_SETTINGS", false),
    ("DELETE_NOTIFICATION_SETTINGS", false),
    ("UPDATE_NOTIFICATION_SETTINGS_DEVICE", false),
    ("DELETE_NOTIFICATION_SETTINGS_DEVICE", false),
    ("CREATE_SMS_MESSAGE", false),
    ("DELETE_SMS_MESSAGE", false),
    ("VIEW_CONFIGURATIONS", true),
    ("UPDATE_CONFIGURATIONS", true),
    ("VIEW_STAFF_CONFIGURATIONS", true),
    ("UPDATE_STAFF_CONFIGURATIONS", true),
    ("VIEW_PATIENT_CONFIGURATIONS", true),
    ("UPDATE_PATIENT_CONFIGURATIONS", true),
    ("CREATE_STRIPE_PRODUCTS", false),
    ("UPDATE_STRIPE_PRODUCTS", false),
    ("DELETE_STRIPE_PRODUCTS", false),
    ("VIEW_STRIPE_ORDERS", false),
    ("UPDATE_STRIPE_ORDERS", false),
    ("VIEW_STRIPE_USERS", false),
    ("UPDATE_STRIPE_USERS", false),
    ("CREATE_PAYMENT_INTENTS", false),
    ("ASSUME_PAYMENT_ENTITY", false),
    ("ADD_CREDITS", false),
    ("VIEW_BALANCE", false),
    ("VIEW_CREDIT_TRANSACTION", false),
    ("CREATE_PACKAGES", false),
    ("UPDATE_PACKAGES", false),
    ("DELETE_PACKAGES", false),
    ("CREATE_APP_STORE_SHARED_SECRET", false),
    ("VIEW_APP_STORE_SHARED_SECRETS", false),
    ("DELETE_APP_STORE_SHARED_SECRET", false),
    ("CREATE_APP_STORE_SUBSCRIPTION_PRODUCT", false),
    ("UPDATE_APP_STORE_SUBSCRIPTION_PRODUCT", false),
    ("DELETE_APP_STORE_SUBSCRIPTION_PRODUCT", false),
    ("VIEW_APP_STORE_SUBSCRIPTIONS", false),
    ("DELETE_APP_STORE_SUBSCRIPTION", false),
    ("TRIGGER_APP_STORE_SUBSCRIPTION_REEVALUATION", false),
    ("VIEW_APP_STORE_NOTIFICATIONS", false),
    ("VIEW_APP_STORE_RECEIPTS", false),
    ("CREATE_PLAY_STORE_SUBSCRIPTION_PRODUCT", false),
    ("UPDATE_PLAY_STORE_SUBSCRIPTION_PRODUCT", false),
    ("DELETE_PLAY_STORE_SUBSCRIPTION_PRODUCT", false),
    ("VIEW_PLAY_STORE_SUBSCRIPTIONS", false),
    ("DELETE_PLAY_STORE_SUBSCRIPTION", false),
    ("TRIGGER_PLAY_STORE_SUBSCRIPTION_REEVALUATION", false),
    ("VIEW_PLAY_STORE_NOTIFICATIONS", false),
    ("VIEW_PLAY_STORE_PURCHASE_INFOS", false),
    ("VIEW_PLAY_STORE_PURCHASE_RECEIPTS", false),
    ("VIEW_SUBSCRIPTION_ENTITLEMENTS", false),
    ("VIEW_SUBSCRIPTION_EVENTS", false),
    ("CREATE_PROFILES", false),
    ("UPDATE_PROFILES", true),
    ("SYNC_PROFILE_GROUPS", false),
    ("CREATE_PROFILE_LOG_ENTRIES", true),
    ("VIEW_PROFILE_LOG_ENTRIES", true),
    ("VIEW_ACCESS_LOGS", false),
    ("ACTIVATE_PRESCRIPTIONS", false),
    ("CREATE_PRESCRIPTIONS", false),
    ("UPDATE_PRESCRIPTIONS", false),
    ("UPDATE_PRESCRIPTION_STATUS", false),
    ("VIEW_PRESCRIPTIONS", false),
    ("PAY_PRESCRIPTIONS", false),
    ("VIEW_PERIODS", false),
    ("VIEW_ACTIVE_PERIODS", false),
    ("TRANSFER_PERIOD", false),
    ("UPDATE_FREE_STATUS", false),
    ("CREATE_REPORTS", false),
    ("UPDATE_REPORTS", false),
    ("DELETE_REPORTS", false),
    ("VIEW_REPORTS", false),
    ("PRERENDER_REPORTS", false),
    ("CREATE_REPORT_SHARES", false),
    ("DELETE_REPORT_SHARES", false),
    ("VIEW_GROUP_REPORT_CONFIGURATIONS", false),
    ("UPDATE_GROUP_REPORT_CONFIGURATIONS", false),
    ("VIEW_PATIENT_REPORT_CONFIGURATIONS", false),
    ("UPDATE_PATIENT_REPORT_CONFIGURATIONS", false),
    ("VIEW_EVENT_LOG", false),
    ("UPDATE_LOCKOUT_POLICY", false),
];

/// Why a permission cannot be added to a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotGrantable {
    #[error("{0} is not a known permission")]
    Unknown(String),
    #[error("{0} means nothing in a group role: it is a global permission")]
    GlobalOnly(String),
}

/// Whether `name` may be added to a role (`in_group`: a group role): a catalogue name, possibly
/// scoped by `:`-separated names (`VIEW_DOCUMENTS:my-schema`, `TRANSITION_DOCUMENTS:s:review`),
/// and for a group role one that means something inside a group.
pub fn check_grantable(name: &str, in_group: bool) -> Result<(), NotGrantable> {
    let mut parts = name.split(':');
    let base = parts.next().unwrap_or_default();
    let scoped_well = parts.all(|scope| {
        !scope.is_empty()
            && scope.len() <= 100
            && scope
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    let known = CATALOGUE.iter().find(|(entry, _)| *entry == base);
    match known {
        Some(_) if !scoped_well => Err(NotGrantable::Unknown(name.to_owned())),
        Some((_, false)) if in_group => Err(NotGrantable::GlobalOnly(name.to_owned())),
        Some(_) => Ok(()),
        None => Err(NotGrantable::Unknown(name.to_owned())),
    }
}

/// A human description for a catalogue entry, derived from its name (`VIEW_USER` → "View user").
pub fn describe(name: &str) -> String {
    let mut text = name.replace('_', " ").to_lowercase();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text
}

/// The permissions a caller holds globally.
///
/// A granted `VIEW_DOCUMENTS` covers every `VIEW_DOCUMENTS:{schema}` check, while a granted
/// `VIEW_DOCUMENTS:{schema}` covers only that schema (Extra Horizon's suffix rule).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions(BTreeSet<String>);

impl Permissions {
    /// Every permission in the catalogue.
    pub fn all() -> Self {
        CATALOGUE
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    }

    /// Whether `permission` (possibly suffixed, `NAME:scope[:scope]`) is granted.
    pub fn allows(&self, permission: &str) -> bool {
        if self.0.contains(permission) {
            return true;
        }
        let mut prefix = permission;
        while let Some((shorter, _)) = prefix.rsplit_once(':') {
            if self.0.contains(shorter) {
                return true;
            }
            prefix = shorter;
        }
        false
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromIterator<String> for Permissions {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<String> for Permissions {
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_no_duplicates() {
        let names: BTreeSet<_> = CATALOGUE.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), CATALOGUE.len());
    }

    #[test]
    fn an_unsuffixed_permission_covers_every_suffix() {
        let granted: Permissions = ["VIEW_DOCUMENTS".to_owned()].into_iter().collect();
        assert!(granted.allows("VIEW_DOCUMENTS"));
        assert!(granted.allows("VIEW_DOCUMENTS:blood-pressure"));
        assert!(!granted.allows("UPDATE_DOCUMENTS"));
    }

    #[test]
    fn a_suffixed_permission_covers_only_its_scope() {
        let granted: Permissions = ["TRANSITION_DOCUMENTS:bp".to_owned()].into_iter().collect();
        assert!(granted.allows("TRANSITION_DOCUMENTS:bp:review"));
        assert!(!granted.allows("TRANSITION_DOCUMENTS"));
        assert!(!granted.allows("TRANSITION_DOCUMENTS:other:review"));
    }

    #[test]
    fn descriptions_read_as_sentences() {
        assert_eq!(describe("VIEW_USER"), "View user");
    }
}
