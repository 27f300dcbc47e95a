use super::*;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::{Application, ApplicationCreated, ApplicationVersionCreated};
use vigil_domain::auth::session::{Session, SessionRefreshed, SessionStarted};
use vigil_domain::commit::{CommandMeta, Commit};
use vigil_domain::id::StreamId;
use vigil_domain::users::role::{
    Role, RoleCreated, RoleDeleted, RolePermissionsAdded, RolePermissionsRemoved,
};
use vigil_domain::users::user::{User, UserRolesAdded, UserRolesRemoved};

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn id(n: u8) -> Id {
    Id::from_bytes([n; 12])
}

/// Folds `events` of the aggregate `kind`/`key` in as the commit at `position`.
fn record(access: &AccessCache, position: u64, stream: StreamId, events: Vec<Event>) {
    let meta = CommandMeta {
        command_id: format!("c{position}"),
        correlation_id: String::new(),
        causation_id: None,
        reason: None,
        actor: Actor::system(Via::Cli),
    };
    let commit = Commit::next(stream, None, &meta, NOW, events);
    access.apply(&Recorded {
        position,
        commit,
        hash: Digest::default(),
    });
}

fn token(n: u8, expires_at: Timestamp) -> IssuedToken {
    IssuedToken {
        id: id(n),
        digest: Digest::of(&[n]),
        expires_at,
    }
}

fn application_created(access: &AccessCache, position: u64, application: u8) {
    let created = ApplicationEvent::Created(ApplicationCreated {
        name: "App".into(),
        description: "An app".into(),
        kind: ApplicationKind::OAuth2 {
            confidential: true,
            redirect_uris: vec![],
        },
    });
    let stream = StreamId::of(Application::KIND, id(application));
    record(access, position, stream, vec![created.into()]);
}

/// A cache that knows the application (`50`) every test session belongs to.
fn cache() -> AccessCache {
    let access = AccessCache::new();
    application_created(&access, 0, 50);
    access
}

fn session_started(access: &AccessCache, position: u64, session: u8, user: u8, tokens: (u8, u8)) {
    let started = SessionEvent::Started(SessionStarted {
        user_id: id(user),
        application_id: id(50),
        access: token(tokens.0, NOW.plus_seconds(60)),
        refresh: token(tokens.1, NOW.plus_seconds(600)),
    });
    let stream = StreamId::of(Session::KIND, id(session));
    record(access, position, stream, vec![started.into()]);
}

#[test]
fn an_access_token_names_its_session_user_and_application() {
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    let bearer = access.bearer(&Digest::of(&[10]));
    assert_eq!(
        bearer,
        Some(Bearer {
            session_id: id(1),
            user_id: id(2),
            application_id: id(50),
            expires_at: NOW.plus_seconds(60),
        })
    );
    assert_eq!(
        access.bearer(&Digest::of(&[11])),
        None,
        "a refresh token is no bearer"
    );
    assert_eq!(
        access.session_of_refresh_token(&Digest::of(&[11])),
        Some(id(1))
    );
    assert_eq!(access.position(), 1);
}

#[test]
fn refreshing_retires_both_previous_tokens() {
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    let refreshed = SessionEvent::Refreshed(SessionRefreshed {
        access: token(12, NOW.plus_seconds(60)),
        refresh: token(13, NOW.plus_seconds(600)),
    });
    record(
        &access,
        2,
        StreamId::of(Session::KIND, id(1)),
        vec![refreshed.into()],
    );
    assert_eq!(access.bearer(&Digest::of(&[10])), None);
    // The rotated refresh token still finds its session, whose aggregate ends it if it is
    // presented again; once the session has ended, it finds nothing.
    assert_eq!(
        access.session_of_refresh_token(&Digest::of(&[11])),
        Some(id(1))
    );
    assert_eq!(
        access.bearer(&Digest::of(&[12])).map(|b| b.user_id),
        Some(id(2))
    );
    assert_eq!(
        access.session_of_refresh_token(&Digest::of(&[13])),
        Some(id(1))
    );
    let reused =
        SessionEvent::RefreshTokenReused(vigil_domain::auth::session::RefreshTokenReused {});
    record(
        &access,
        3,
        StreamId::of(Session::KIND, id(1)),
        vec![reused.into()],
    );
    assert_eq!(access.bearer(&Digest::of(&[12])), None);
    for refresh in [11, 13] {
        assert_eq!(
            access.session_of_refresh_token(&Digest::of(&[refresh])),
            None
        );
    }
}

#[test]
fn permissions_follow_roles_and_their_permissions() {
    let access = cache();
    let role = StreamId::of(Role::KIND, id(7));
    let user = StreamId::of(User::KIND, id(2));
    let created = RoleEvent::Created(RoleCreated {
        name: "Viewer".into(),
        description: String::new(),
    });
    let granted = RoleEvent::PermissionsAdded(RolePermissionsAdded {
        permissions: vec!["VIEW_USER".into(), "VIEW_ROLE".into()],
    });
    record(
        &access,
        1,
        role.clone(),
        vec![created.into(), granted.into()],
    );
    assert!(!access.rights(id(2)).global.allows("VIEW_USER"));
    let given = UserEvent::RolesAdded(UserRolesAdded {
        role_ids: vec![id(7)],
    });
    record(&access, 2, user.clone(), vec![given.into()]);
    assert!(access.rights(id(2)).global.allows("VIEW_USER"));

    let revoked = RoleEvent::PermissionsRemoved(RolePermissionsRemoved {
        permissions: vec!["VIEW_USER".into()],
    });
    record(&access, 3, role.clone(), vec![revoked.into()]);
    let now = &access.rights(id(2)).global;
    assert!(!now.allows("VIEW_USER") && now.allows("VIEW_ROLE"));

    record(
        &access,
        4,
        role,
        vec![RoleEvent::Deleted(RoleDeleted {}).into()],
    );
    assert!(!access.rights(id(2)).global.allows("VIEW_ROLE"));
    assert!(!access.role_exists(id(7)));

    let taken = UserEvent::RolesRemoved(UserRolesRemoved {
        role_ids: vec![id(7)],
    });
    record(&access, 5, user, vec![taken.into()]);
    assert_eq!(access.rights(id(2)).global.iter().count(), 0);
}

#[test]
fn group_roles_grant_staff_permissions_inside_their_group_only() {
    use vigil_domain::users::group::{
        Group, GroupRoleCreated, GroupRoleDeleted, GroupRolePermissionsAdded,
    };
    use vigil_domain::users::user::{
        PatientEnlisted, StaffEnlisted, StaffRemoved, StaffRolesAdded,
    };
    let access = cache();
    let group = StreamId::of(Group::KIND, id(30));
    let user = StreamId::of(User::KIND, id(2));
    let created = GroupEvent::RoleCreated(GroupRoleCreated {
        role_id: id(31),
        name: "Physician".into(),
        description: String::new(),
    });
    let granted = GroupEvent::RolePermissionsAdded(GroupRolePermissionsAdded {
        role_id: id(31),
        permissions: vec!["VIEW_DOCUMENTS".into()],
    });
    record(
        &access,
        1,
        group.clone(),
        vec![created.into(), granted.into()],
    );
    assert!(access.group_role_exists(id(30), id(31)));
    assert!(!access.group_role_exists(id(29), id(31)));
    let enlisted = UserEvent::StaffEnlisted(StaffEnlisted { group_id: id(30) });
    let given = UserEvent::StaffRolesAdded(StaffRolesAdded {
        group_id: id(30),
        role_ids: vec![id(31)],
    });
    let patient = UserEvent::PatientEnlisted(PatientEnlisted {
        group_id: id(40),
        expires_at: None,
    });
    record(
        &access,
        2,
        user.clone(),
        vec![enlisted.into(), given.into(), patient.into()],
    );
    let rights = access.rights(id(2));
    assert!(rights.staff[&id(30)].allows("VIEW_DOCUMENTS:bp"));
    assert!(!rights.global.allows("VIEW_DOCUMENTS"));
    assert!(rights.patient.contains(&id(40)));

    let deleted = GroupEvent::RoleDeleted(GroupRoleDeleted { role_id: id(31) });
    record(&access, 3, group, vec![deleted.into()]);
    assert!(!access.rights(id(2)).staff[&id(30)].allows("VIEW_DOCUMENTS"));

    let removed = UserEvent::StaffRemoved(StaffRemoved { group_id: id(30) });
    record(&access, 4, user, vec![removed.into()]);
    assert!(access.rights(id(2)).staff.is_empty());
}

#[test]
fn a_deleted_user_is_logged_out_everywhere() {
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    session_started(&access, 2, 3, 2, (12, 13));
    session_started(&access, 3, 4, 5, (14, 15));
    let deleted = UserEvent::Deleted(vigil_domain::users::user::UserDeleted {});
    record(
        &access,
        4,
        StreamId::of(User::KIND, id(2)),
        vec![deleted.into()],
    );
    for gone in [10, 12] {
        assert_eq!(access.bearer(&Digest::of(&[gone])), None);
    }
    assert_eq!(access.session_of_refresh_token(&Digest::of(&[13])), None);
    assert!(
        access.bearer(&Digest::of(&[14])).is_some(),
        "other users stay logged in"
    );
}

/// OAuth1 token `token` (its id and digest) of `user`, made at `position`.
fn oauth1_token_created(access: &AccessCache, position: u64, token: u8, user: u8) {
    use vigil_domain::auth::oauth1::{OAuth1Token, OAuth1TokenCreated};
    use vigil_domain::event::OAuth1TokenEvent;
    let created = OAuth1TokenEvent::Created(OAuth1TokenCreated {
        user_id: id(user),
        application_id: id(50),
        token_digest: Digest::of(&[token]),
        secret: vigil_domain::value::Sealed(vec![token]),
    });
    let stream = StreamId::of(OAuth1Token::KIND, id(token));
    record(access, position, stream, vec![created.into()]);
}

#[test]
fn a_password_change_logs_the_user_out_everywhere_but_where_it_was_made() {
    use vigil_domain::users::user::{KeptLogin, LoggedOutElsewhere};
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    session_started(&access, 2, 3, 2, (12, 13));
    session_started(&access, 3, 4, 5, (14, 15));
    for (position, token) in [(4, 20), (5, 21)] {
        oauth1_token_created(&access, position, token, 2);
    }
    let user = StreamId::of(User::KIND, id(2));
    let elsewhere = |kept| UserEvent::LoggedOutElsewhere(LoggedOutElsewhere { kept }).into();
    record(
        &access,
        6,
        user.clone(),
        vec![elsewhere(KeptLogin::Session(id(1)))],
    );
    assert!(
        access.bearer(&Digest::of(&[10])).is_some(),
        "the session it was made with stays"
    );
    assert_eq!(
        access.session_of_refresh_token(&Digest::of(&[11])),
        Some(id(1))
    );
    assert_eq!(access.bearer(&Digest::of(&[12])), None);
    assert_eq!(access.session_of_refresh_token(&Digest::of(&[13])), None);
    assert!(
        access.bearer(&Digest::of(&[14])).is_some(),
        "other users stay logged in"
    );
    for token in [20, 21] {
        assert_eq!(access.oauth1_token(&Digest::of(&[token])), None);
    }

    // Made with an OAuth1 token, that token stays and every session ends.
    for (position, token) in [(7, 22), (8, 23)] {
        oauth1_token_created(&access, position, token, 2);
    }
    record(
        &access,
        9,
        user,
        vec![elsewhere(KeptLogin::OAuth1Token(id(22)))],
    );
    assert!(access.oauth1_token(&Digest::of(&[22])).is_some());
    assert_eq!(access.oauth1_token(&Digest::of(&[23])), None);
    assert_eq!(access.bearer(&Digest::of(&[10])), None);
}

#[test]
fn tokens_and_clients_die_with_their_application() {
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    let version = ApplicationEvent::VersionCreated(ApplicationVersionCreated {
        version_id: id(51),
        name: "1.0".into(),
        client_id: "client".into(),
        secret_digest: Digest::of(b"secret"),
    });
    let application = StreamId::of(Application::KIND, id(50));
    record(&access, 2, application.clone(), vec![version.into()]);
    assert!(access.client("client").is_some());
    let deleted = ApplicationEvent::Deleted(vigil_domain::auth::application::ApplicationDeleted {});
    record(&access, 3, application, vec![deleted.into()]);
    assert_eq!(access.client("client"), None);
    assert_eq!(access.bearer(&Digest::of(&[10])), None);
}

#[test]
fn clients_are_found_by_client_id() {
    let access = cache();
    let application = StreamId::of(Application::KIND, id(50));
    let created = ApplicationEvent::Created(ApplicationCreated {
        name: "App".into(),
        description: "An app".into(),
        kind: ApplicationKind::OAuth2 {
            confidential: true,
            redirect_uris: vec![],
        },
    });
    let version = ApplicationEvent::VersionCreated(ApplicationVersionCreated {
        version_id: id(51),
        name: "1.0".into(),
        client_id: "client".into(),
        secret_digest: Digest::of(b"secret"),
    });
    record(
        &access,
        1,
        application,
        vec![created.into(), version.into()],
    );
    assert_eq!(
        access.client("client"),
        Some(Client {
            application_id: id(50),
            confidential: true,
            secret_digest: Digest::of(b"secret"),
        })
    );
    assert_eq!(access.client("other"), None);
}

#[test]
fn sessions_that_can_no_longer_be_used_are_forgotten() {
    let access = cache();
    session_started(&access, 1, 1, 2, (10, 11));
    access.prune(NOW.plus_seconds(599));
    assert!(
        access
            .session_of_refresh_token(&Digest::of(&[11]))
            .is_some()
    );
    access.prune(NOW.plus_seconds(600));
    assert_eq!(access.session_of_refresh_token(&Digest::of(&[11])), None);
    assert_eq!(access.bearer(&Digest::of(&[10])), None);
}

#[tokio::test]
async fn waiting_ends_when_the_position_is_reached_or_time_runs_out() {
    let access = Arc::new(cache());
    assert!(!access.wait_for(1, Duration::from_millis(20)).await);
    let waiter = tokio::spawn({
        let access = access.clone();
        async move { access.wait_for(1, Duration::from_secs(5)).await }
    });
    session_started(&access, 1, 1, 2, (10, 11));
    assert!(waiter.await.unwrap_or(false));
}
