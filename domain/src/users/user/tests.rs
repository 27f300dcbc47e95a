use super::*;
use crate::actor::{Actor, Via};
use crate::aggregate::testing::{given, id};
use crate::permission::Permissions;
use proptest::prelude::*;

fn registration(activated: bool) -> Registration {
    Registration {
        email: Email::parse("jane@example.com").unwrap(),
        first_name: "Jane".into(),
        last_name: "Doe".into(),
        phone_number: None,
        language: "EN".into(),
        time_zone: "Europe/Brussels".into(),
        password_hash: PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        activated,
        activation_request: None,
        oidc: None,
    }
}

fn registered() -> UserEvent {
    match given::<User>(&[])
        .when(UserCommand::Register(registration(false)))
        .events()
        .pop()
    {
        Some(event) => event,
        None => panic!("registration decided nothing"),
    }
}

fn nobody() -> Actor {
    Actor::anonymous(None, Via::Http, None)
}

#[test]
fn anyone_may_register_an_inactive_account() {
    given::<User>(&[])
        .by(nobody())
        .when(UserCommand::Register(registration(false)))
        .then(&[registered()]);
}

#[test]
fn registering_an_activated_account_needs_a_permission() {
    given::<User>(&[])
        .by(nobody())
        .when(UserCommand::Register(registration(true)))
        .then_err(UserError::NoPermission("UPDATE_USER"));
}

#[test]
fn a_user_is_registered_once() {
    given::<User>(&[registered()])
        .when(UserCommand::Register(registration(false)))
        .then_err(UserError::AlreadyRegistered);
}

#[test]
fn roles_are_added_once_each() {
    let added = UserEvent::RolesAdded(UserRolesAdded {
        role_ids: vec![id(1)],
    });
    given::<User>(&[registered(), added])
        .when(UserCommand::AddRoles {
            role_ids: vec![id(2), id(1), id(2)],
        })
        .then(&[UserEvent::RolesAdded(UserRolesAdded {
            role_ids: vec![id(2)],
        })]);
}

#[test]
fn adding_roles_needs_the_permission() {
    let caller = Actor::user(id(7), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered()])
        .by(caller)
        .when(UserCommand::AddRoles {
            role_ids: vec![id(1)],
        })
        .then_err(UserError::NoPermission("ADD_ROLE_TO_USER"));
}

#[test]
fn roles_cannot_be_added_to_a_user_that_does_not_exist() {
    given::<User>(&[])
        .when(UserCommand::AddRoles {
            role_ids: vec![id(1)],
        })
        .then_err(UserError::NotFound);
}

#[test]
fn users_change_their_own_profile_and_others_need_a_permission() {
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    let changes = ProfileChanges {
        first_name: Some(" Janet ".into()),
        phone_number: Some(None),
        language: Some("fr".into()),
        ..ProfileChanges::default()
    };
    given::<User>(&[registered()])
        .by(me)
        .when(UserCommand::Update(changes.clone()))
        .then(&[UserEvent::Updated(UserUpdated {
            first_name: Some(Personal("Janet".into())),
            last_name: None,
            phone_number: Some(Optional::Cleared),
            language: Some("FR".into()),
            time_zone: None,
        })]);
    let other = Actor::user(id(9), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered()])
        .by(other)
        .when(UserCommand::Update(changes))
        .then_err(UserError::NoPermission("UPDATE_USER"));
}

#[test]
fn profile_fields_are_validated() {
    let bad = ProfileChanges {
        language: Some("english".into()),
        ..ProfileChanges::default()
    };
    given::<User>(&[registered()])
        .when(UserCommand::Update(bad))
        .then_err(UserError::InvalidField(
            "language must be a two-letter ISO 639-1 code".into(),
        ));
}

#[test]
fn names_and_phone_numbers_are_bounded_and_free_of_control_characters() {
    let register = |first_name: &str, phone_number: Option<&str>| {
        given::<User>(&[])
            .when(UserCommand::Register(Registration {
                first_name: first_name.into(),
                phone_number: phone_number.map(Into::into),
                ..registration(false)
            }))
            .events_or_error()
    };
    assert!(register("Jane", Some("+32 470 12 34 56")).is_ok());
    for (first_name, phone_number) in [
        ("Ja\u{0}ne", None),
        ("J".repeat(LONGEST_NAME + 1).as_str(), None),
        ("", None),
        ("Jane", Some("1".repeat(LONGEST_PHONE_NUMBER + 1).as_str())),
        ("Jane", Some("+32\r\n470")),
    ] {
        assert!(
            matches!(
                register(first_name, phone_number),
                Err(UserError::InvalidField(_))
            ),
            "{first_name:?} {phone_number:?}"
        );
    }
    let long_phone = ProfileChanges {
        phone_number: Some(Some("9".repeat(500 * 1024))),
        ..ProfileChanges::default()
    };
    assert!(matches!(
        given::<User>(&[registered()])
            .when(UserCommand::Update(long_phone))
            .events_or_error(),
        Err(UserError::InvalidField(_))
    ));
}

proptest! {
    /// A provider's name always becomes one a registration takes.
    #[test]
    fn a_fitted_name_is_a_valid_name(value in any::<String>()) {
        prop_assert!(name("first_name", &fitted_name(&value)).is_ok());
    }
}

#[test]
fn only_the_user_changes_their_password() {
    let hash = PasswordHash("new".into());
    let admin = Actor::user(id(9), None, Permissions::all(), Via::Http, None);
    given::<User>(&[registered()])
        .by(admin)
        .when(UserCommand::ChangePassword {
            password_hash: hash.clone(),
            kept: KeptLogin::None,
        })
        .then_err(UserError::NoPermission("UPDATE_USER"));
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered()])
        .by(me)
        .when(UserCommand::ChangePassword {
            password_hash: hash.clone(),
            kept: KeptLogin::Session(id(5)),
        })
        .then(&[
            UserEvent::PasswordChanged(PasswordChanged {
                password_hash: hash,
            }),
            UserEvent::LoggedOutElsewhere(LoggedOutElsewhere {
                kept: KeptLogin::Session(id(5)),
            }),
        ]);
}

#[test]
fn a_deleted_user_is_gone_for_every_command() {
    let deleted = UserEvent::Deleted(UserDeleted {});
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered()])
        .by(me)
        .when(UserCommand::Delete)
        .then(std::slice::from_ref(&deleted));
    let state = User::fold(&[registered(), deleted.clone()]);
    assert!(!state.active() && state.password_hash.is_none());
    given::<User>(&[registered(), deleted])
        .when(UserCommand::AddRoles {
            role_ids: vec![id(1)],
        })
        .then_err(UserError::NotFound);
}

fn with_activation_request() -> Vec<UserEvent> {
    let registration = Registration {
        activation_request: Some(CodeRequest::hash(id(5))),
        ..registration(false)
    };
    given::<User>(&[])
        .by(nobody())
        .when(UserCommand::Register(registration))
        .events()
}

#[test]
fn registering_for_a_mailed_activation_records_the_request() {
    let events = with_activation_request();
    assert!(matches!(
        events.as_slice(),
        [UserEvent::Registered(_), UserEvent::CodeRequested(r)]
            if r.request_id == id(5) && r.purpose == Purpose::Activation
                && r.mode == Mode::Hash && r.initiations == 1 && r.first_request_id == id(5)
    ));
}

fn hash(code: &[u8]) -> Proof {
    Proof {
        mode: Mode::Hash,
        digest: Digest::of(code),
    }
}

#[test]
fn the_mailed_code_activates_the_account_once() {
    let mut history = with_activation_request();
    let issue = UserCommand::IssueCode {
        purpose: Purpose::Activation,
        request_id: id(5),
        digest: Digest::of(b"code"),
    };
    given::<User>(&history)
        .by(nobody())
        .when(issue.clone())
        .then_err(UserError::NoPermission("SEND_MAILS"));
    history.extend(given::<User>(&history).when(issue).events());
    given::<User>(&history)
        .by(nobody())
        .when(UserCommand::Activate {
            proof: hash(b"wrong"),
        })
        .then_err(UserError::Verification(VerificationError::UnknownCode(
            Purpose::Activation,
        )));
    let activated = given::<User>(&history)
        .by(nobody())
        .when(UserCommand::Activate {
            proof: hash(b"code"),
        })
        .events();
    assert_eq!(
        activated,
        [UserEvent::Activated(UserActivated {
            request_id: Some(id(5))
        })]
    );
    history.extend(activated);
    given::<User>(&history)
        .by(nobody())
        .when(UserCommand::Activate {
            proof: hash(b"code"),
        })
        .then_err(UserError::Verification(VerificationError::UnknownCode(
            Purpose::Activation,
        )));
    given::<User>(&history)
        .when(UserCommand::RequestVerification {
            purpose: Purpose::Activation,
            request: CodeRequest::hash(id(6)),
        })
        .then_err(UserError::AlreadyActivated);
}

fn with_pin_reset_request() -> Vec<UserEvent> {
    let mut history = vec![
        registered(),
        UserEvent::Activated(UserActivated { request_id: None }),
    ];
    let request = UserCommand::RequestVerification {
        purpose: Purpose::PasswordReset,
        request: CodeRequest {
            request_id: id(7),
            mode: Mode::PinCode,
            limited: true,
        },
    };
    history.extend(given::<User>(&history).by(nobody()).when(request).events());
    let issue = UserCommand::IssueCode {
        purpose: Purpose::PasswordReset,
        request_id: id(7),
        digest: Digest::of(b"12345678"),
    };
    history.extend(given::<User>(&history).when(issue).events());
    history
}

fn reset_with_pin(pin: &[u8]) -> UserCommand {
    UserCommand::ResetPassword {
        proof: Proof {
            mode: Mode::PinCode,
            digest: Digest::of(pin),
        },
        password_hash: PasswordHash("new".into()),
    }
}

#[test]
fn a_mailed_pin_expires_after_fifteen_minutes() {
    let history = with_pin_reset_request();
    given::<User>(&history)
        .by(nobody())
        .at(crate::aggregate::testing::NOW.plus_seconds(15 * 60))
        .when(reset_with_pin(b"12345678"))
        .then_err(UserError::Verification(
            VerificationError::UnknownPinRequest(Purpose::PasswordReset),
        ));
    given::<User>(&history)
        .by(nobody())
        .when(UserCommand::ResetPassword {
            proof: hash(b"12345678"),
            password_hash: PasswordHash("new".into()),
        })
        .then_err(UserError::Verification(VerificationError::UnknownCode(
            Purpose::PasswordReset,
        )));
}

#[test]
fn every_wrong_pin_is_recorded_and_the_fourth_attempt_is_refused() {
    let mut history = with_pin_reset_request();
    for failed_attempts in 1..=3 {
        let failed = UserEvent::PinFailed(VerificationPinFailed {
            request_id: id(7),
            purpose: Purpose::PasswordReset,
            at: crate::aggregate::testing::NOW,
            failed_attempts,
        });
        given::<User>(&history)
            .by(nobody())
            .when(reset_with_pin(b"00000000"))
            .then_refused(
                UserError::Verification(VerificationError::WrongPin),
                std::slice::from_ref(&failed),
            );
        history.push(failed);
    }
    given::<User>(&history)
        .by(nobody())
        .when(reset_with_pin(b"12345678"))
        .then_err(UserError::Verification(
            VerificationError::PinAttemptsExhausted,
        ));
    let fresh = with_pin_reset_request();
    let reset = given::<User>(&fresh)
        .by(nobody())
        .when(reset_with_pin(b"12345678"))
        .events();
    assert!(matches!(reset.as_slice(), [UserEvent::PasswordReset(r)] if r.request_id == id(7)));
}

#[test]
fn an_administrator_clears_a_run_of_requests_by_its_first_id() {
    let history = with_pin_reset_request();
    let clear = |request_id| UserCommand::ClearVerification {
        purpose: Purpose::PasswordReset,
        request_id,
    };
    given::<User>(&history)
        .by(nobody())
        .when(clear(id(7)))
        .then_err(UserError::NoPermission("DELETE_FORGOT_PASSWORD_REQUEST"));
    given::<User>(&history)
        .when(clear(id(8)))
        .then_err(UserError::Verification(VerificationError::NotPending));
    let cleared = given::<User>(&history).when(clear(id(7))).events();
    let state = User::fold(&[history.clone(), cleared].concat());
    assert_eq!(state.reset, Verification::default());
    // A run of two requests is named by its first.
    let later = crate::aggregate::testing::NOW.plus_seconds(600);
    let mut history = history;
    history.extend(
        given::<User>(&history)
            .by(nobody())
            .at(later)
            .when(UserCommand::RequestVerification {
                purpose: Purpose::PasswordReset,
                request: CodeRequest {
                    request_id: id(9),
                    mode: Mode::PinCode,
                    limited: true,
                },
            })
            .events(),
    );
    let state = User::fold(&history);
    assert_eq!(
        (
            state.reset.first_request_id,
            state.reset.request_id,
            state.reset.initiations
        ),
        (Some(id(7)), Some(id(9)), 2)
    );
    given::<User>(&history).when(clear(id(7))).events();
}

#[test]
fn an_account_of_an_oidc_provider_has_no_password() {
    let registration = Registration {
        activated: true,
        oidc: Some(OidcLinked {
            provider_id: id(4),
            subject_id: Personal("subject".into()),
        }),
        ..registration(false)
    };
    let history = given::<User>(&[])
        .by(nobody())
        .when(UserCommand::Register(registration))
        .events();
    let state = User::fold(&history);
    assert_eq!(state.password_hash, None);
    given::<User>(&history)
        .by(nobody())
        .when(UserCommand::RequestVerification {
            purpose: Purpose::PasswordReset,
            request: CodeRequest::hash(id(6)),
        })
        .then_err(UserError::DisabledForOidcUsers);
    given::<User>(&history)
        .by(nobody())
        .when(UserCommand::UnlinkOidc {
            reset_request: id(7),
        })
        .then_err(UserError::NoPermission("UNLINK_USER_FROM_OIDC"));
    let unlinked = given::<User>(&history)
        .when(UserCommand::UnlinkOidc {
            reset_request: id(7),
        })
        .events();
    assert!(matches!(unlinked.as_slice(), [
        UserEvent::OidcUnlinked(u),
        UserEvent::CodeRequested(r),
    ] if u.provider_id == id(4) && u.reset_request == Some(id(7))
        && r.request_id == id(7) && r.purpose == Purpose::PasswordReset));
    let state = User::fold(&[history.clone(), unlinked].concat());
    assert!(state.oidc_links.is_empty());
    assert_eq!(state.unlink_request, Some(id(7)));
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    let link = OidcLinked {
        provider_id: id(5),
        subject_id: Personal("another".into()),
    };
    given::<User>(&[registered()])
        .by(me.clone())
        .when(UserCommand::LinkOidc {
            link: link.clone(),
            presence_confirmed: false,
        })
        .then_err(UserError::InvalidPresence);
    given::<User>(&[registered()])
        .by(me)
        .when(UserCommand::LinkOidc {
            link: link.clone(),
            presence_confirmed: true,
        })
        .then(&[UserEvent::OidcLinked(link)]);
}

#[test]
fn a_new_email_address_must_be_verified_again() {
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    let email = Email::parse("jane@new.example").unwrap();
    let events = given::<User>(&[registered()])
        .by(me)
        .when(UserCommand::ChangeEmail {
            email: email.clone(),
            activation_request: Some(CodeRequest::hash(id(3))),
        })
        .events();
    let state = User::fold(&[vec![registered()], events].concat());
    assert_eq!(state.email, Some(email));
    assert!(!state.activated);
    assert_eq!(state.activation.request_id, Some(id(3)));
    let other = Actor::user(id(9), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered()])
        .by(other)
        .when(UserCommand::ChangeEmail {
            email: Email::parse("x@example.com").unwrap(),
            activation_request: None,
        })
        .then_err(UserError::NoPermission("UPDATE_USER_EMAIL"));
}

#[test]
fn a_profile_image_is_set_and_removed_by_its_user() {
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    let set = UserEvent::ProfileImageSet(ProfileImageSet {
        hash: Some("abc".into()),
    });
    given::<User>(&[registered()])
        .by(me.clone())
        .when(UserCommand::SetProfileImage {
            hash: Some(" abc ".into()),
        })
        .then(std::slice::from_ref(&set));
    given::<User>(&[registered(), set])
        .by(me)
        .when(UserCommand::SetProfileImage { hash: None })
        .then(&[UserEvent::ProfileImageSet(ProfileImageSet { hash: None })]);
}

#[test]
fn a_password_reset_needs_an_activated_account() {
    given::<User>(&[registered()])
        .by(nobody())
        .when(UserCommand::RequestVerification {
            purpose: Purpose::PasswordReset,
            request: CodeRequest::hash(id(6)),
        })
        .then_err(UserError::NotActivated);
}

#[test]
fn only_held_roles_are_removed() {
    let added = UserEvent::RolesAdded(UserRolesAdded {
        role_ids: vec![id(1), id(2)],
    });
    given::<User>(&[registered(), added])
        .when(UserCommand::RemoveRoles {
            role_ids: vec![id(3), id(2)],
        })
        .then(&[UserEvent::RolesRemoved(UserRolesRemoved {
            role_ids: vec![id(2)],
        })]);
}

fn staff_of(group: Id, permissions: &[&str]) -> Actor {
    let rights = crate::actor::Rights {
        staff: [(group, permissions.iter().map(|p| (*p).to_owned()).collect())].into(),
        ..Default::default()
    };
    Actor::user(id(7), None, rights, Via::Http, None)
}

#[test]
fn staff_enlistments_are_added_once_per_group() {
    let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) });
    given::<User>(&[registered(), enlisted.clone()])
        .when(UserCommand::AddToStaff {
            groups: vec![id(2), id(1), id(2)],
        })
        .then(&[UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(2) })]);
}

#[test]
fn a_staff_permission_reaches_only_its_own_group() {
    let staff = staff_of(id(1), &["ADD_STAFF"]);
    given::<User>(&[registered()])
        .by(staff.clone())
        .when(UserCommand::AddToStaff {
            groups: vec![id(1)],
        })
        .then(&[UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) })]);
    given::<User>(&[registered()])
        .by(staff)
        .when(UserCommand::AddToStaff {
            groups: vec![id(1), id(2)],
        })
        .then_err(UserError::NoPermission("ADD_STAFF"));
}

#[test]
fn group_roles_go_only_to_staff_of_the_group_and_leave_with_the_enlistment() {
    let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(1) });
    let added = UserEvent::StaffRolesAdded(StaffRolesAdded {
        group_id: id(1),
        role_ids: vec![id(5)],
    });
    given::<User>(&[registered()])
        .when(UserCommand::AddStaffRoles {
            group_id: id(1),
            role_ids: vec![id(5)],
        })
        .then(&[]);
    given::<User>(&[registered(), enlisted.clone()])
        .when(UserCommand::AddStaffRoles {
            group_id: id(1),
            role_ids: vec![id(5), id(5)],
        })
        .then(std::slice::from_ref(&added));
    let state = User::fold(&[
        registered(),
        enlisted.clone(),
        added,
        UserEvent::StaffRemoved(StaffRemoved { group_id: id(1) }),
        enlisted,
    ]);
    assert_eq!(state.staff.get(&id(1)), Some(&BTreeSet::new()));
}

#[test]
fn a_patient_enlistment_is_added_once_and_removed_once() {
    let enlisted = UserEvent::PatientEnlisted(PatientEnlisted {
        group_id: id(1),
        expires_at: Some(Timestamp(5)),
    });
    given::<User>(&[registered()])
        .when(UserCommand::EnlistPatient {
            group_id: id(1),
            expires_at: Some(Timestamp(5)),
        })
        .then(std::slice::from_ref(&enlisted));
    given::<User>(&[registered(), enlisted.clone()])
        .when(UserCommand::EnlistPatient {
            group_id: id(1),
            expires_at: None,
        })
        .then_err(UserError::AlreadyPatient);
    given::<User>(&[registered()])
        .when(UserCommand::RemovePatient { group_id: id(1) })
        .then_err(UserError::NotPatient);
}

#[test]
fn patients_leave_a_group_themselves_or_by_a_remove_patient_permission() {
    let enlisted = UserEvent::PatientEnlisted(PatientEnlisted {
        group_id: id(1),
        expires_at: None,
    });
    let removed = UserEvent::PatientRemoved(PatientRemoved { group_id: id(1) });
    let me = Actor::user(id(0), None, Permissions::default(), Via::Http, None);
    given::<User>(&[registered(), enlisted.clone()])
        .by(me)
        .when(UserCommand::RemovePatient { group_id: id(1) })
        .then(std::slice::from_ref(&removed));
    given::<User>(&[registered(), enlisted.clone()])
        .by(staff_of(id(1), &["REMOVE_PATIENT"]))
        .when(UserCommand::RemovePatient { group_id: id(1) })
        .then(std::slice::from_ref(&removed));
    given::<User>(&[registered(), enlisted.clone()])
        .by(staff_of(id(2), &["REMOVE_PATIENT"]))
        .when(UserCommand::RemovePatient { group_id: id(1) })
        .then_err(UserError::NoPermission("REMOVE_PATIENT"));
    // Adding a patient is a global permission only.
    given::<User>(&[registered()])
        .by(staff_of(id(1), &["ADD_PATIENT"]))
        .when(UserCommand::EnlistPatient {
            group_id: id(1),
            expires_at: None,
        })
        .then_err(UserError::NoPermission("ADD_PATIENT"));
}

proptest! {
    #[test]
    fn roles_held_are_those_added_and_not_removed_since(events: Vec<UserEvent>) {
        let state = User::fold(&events);
        let mut expected = BTreeSet::new();
        for event in &events {
            match event {
                UserEvent::RolesAdded(r) => expected.extend(r.role_ids.iter().copied()),
                UserEvent::RolesRemoved(r) => {
                    for role in &r.role_ids {
                        expected.remove(role);
                    }
                }
                UserEvent::Deleted(_) => expected.clear(),
                _ => {}
            }
        }
        prop_assert_eq!(state.role_ids, expected);
    }
}
