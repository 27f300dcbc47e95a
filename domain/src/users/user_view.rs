//! Which view of a user a caller gets: the user service shows a user in full (to themselves and
//! to holders of `VIEW_USER`), in the patient view (to the staff of a group the user is a patient
//! of, or with `VIEW_PATIENTS`), in the staff view (to fellow members of a group the user is
//! staff of, or with `VIEW_STAFF`), or not at all.

use std::collections::BTreeSet;

use crate::actor::Actor;
use crate::id::Id;

/// How a user is shown. A limited view shows the enlistments of `groups` only (`None`: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserView {
    Full,
    Patient { groups: Option<BTreeSet<Id>> },
    Staff { groups: Option<BTreeSet<Id>> },
}

/// The groups a user is enlisted in.
#[derive(Debug, Clone, Copy)]
pub struct Enlisted<'a> {
    /// As a patient.
    pub patient: &'a BTreeSet<Id>,
    /// As staff.
    pub staff: &'a BTreeSet<Id>,
}

/// The groups `actor` is staff of.
pub fn staff_of(actor: &Actor) -> BTreeSet<Id> {
    actor.staff_groups().collect()
}

/// The groups `actor` is staff or a patient of.
pub fn member_of(actor: &Actor) -> BTreeSet<Id> {
    actor.staff_groups().chain(actor.patient_groups()).collect()
}

/// How `actor` may see the user `id` enlisted in `enlisted`, if at all (`GET /users/v1/{id}`).
pub fn view_of(actor: &Actor, id: Id, enlisted: Enlisted<'_>) -> Option<UserView> {
    if actor.is_user(id) || actor.allows("VIEW_USER") {
        return Some(UserView::Full);
    }
    let staff_of = staff_of(actor);
    let member_of = member_of(actor);
    if !enlisted.patient.is_disjoint(&staff_of) {
        Some(UserView::Patient {
            groups: Some(staff_of),
        })
    } else if !enlisted.patient.is_empty() && actor.allows("VIEW_PATIENTS") {
        Some(UserView::Patient { groups: None })
    } else if !enlisted.staff.is_disjoint(&member_of) {
        Some(UserView::Staff {
            groups: Some(member_of),
        })
    } else if !enlisted.staff.is_empty() && actor.allows("VIEW_STAFF") {
        Some(UserView::Staff { groups: None })
    } else {
        None
    }
}

/// How a user of `GET /users/v1/` (which lists, to a caller without `VIEW_USER`, the patients of
/// their staff groups and the staff of their groups) is shown: a patient of one of the caller's
/// staff groups in the patient view, anyone else listed in the staff view.
pub fn listed_view_of(actor: &Actor, patient_of: &BTreeSet<Id>) -> UserView {
    if actor.allows("VIEW_USER") {
        return UserView::Full;
    }
    let staff_of = staff_of(actor);
    if patient_of.is_disjoint(&staff_of) {
        UserView::Staff {
            groups: Some(member_of(actor)),
        }
    } else {
        UserView::Patient {
            groups: Some(staff_of),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Rights, Via};
    use crate::aggregate::testing::id;
    use crate::permission::Permissions;

    const MINE: u8 = 40;
    const OTHER: u8 = 41;

    fn caller(rights: Rights) -> Actor {
        Actor::user(id(1), None, rights, Via::Http, None)
    }

    fn staff_of(group: u8) -> Rights {
        Rights {
            staff: [(id(group), Permissions::default())].into(),
            ..Rights::default()
        }
    }

    fn with_global(permission: &str) -> Rights {
        Rights {
            global: [permission.to_owned()].into_iter().collect(),
            ..Rights::default()
        }
    }

    fn groups(of: &[u8]) -> BTreeSet<Id> {
        of.iter().map(|n| id(*n)).collect()
    }

    #[test]
    fn oneself_and_holders_of_view_user_see_a_user_in_full() {
        let none = BTreeSet::new();
        let enlisted = Enlisted {
            patient: &none,
            staff: &none,
        };
        assert_eq!(
            view_of(&caller(Rights::default()), id(1), enlisted),
            Some(UserView::Full)
        );
        assert_eq!(
            view_of(&caller(with_global("VIEW_USER")), id(2), enlisted),
            Some(UserView::Full)
        );
        assert_eq!(view_of(&caller(Rights::default()), id(2), enlisted), None);
    }

    #[test]
    fn staff_see_their_groups_patients_and_fellow_staff_in_limited_views() {
        let (mine, other, none) = (groups(&[MINE]), groups(&[OTHER]), BTreeSet::new());
        let physician = caller(staff_of(MINE));
        let patient = Enlisted {
            patient: &mine,
            staff: &none,
        };
        assert_eq!(
            view_of(&physician, id(2), patient),
            Some(UserView::Patient {
                groups: Some(mine.clone())
            })
        );
        let colleague = Enlisted {
            patient: &none,
            staff: &mine,
        };
        assert_eq!(
            view_of(&physician, id(2), colleague),
            Some(UserView::Staff {
                groups: Some(mine.clone())
            })
        );
        let stranger = Enlisted {
            patient: &other,
            staff: &other,
        };
        assert_eq!(view_of(&physician, id(2), stranger), None);
        assert_eq!(
            view_of(&caller(with_global("VIEW_PATIENTS")), id(2), stranger),
            Some(UserView::Patient { groups: None })
        );
        let staff_elsewhere = Enlisted {
            patient: &none,
            staff: &other,
        };
        assert_eq!(
            view_of(&caller(with_global("VIEW_STAFF")), id(2), staff_elsewhere),
            Some(UserView::Staff { groups: None })
        );
        assert_eq!(
            view_of(
                &caller(with_global("VIEW_PATIENTS")),
                id(2),
                staff_elsewhere
            ),
            None
        );
    }

    #[test]
    fn a_list_shows_patients_of_the_callers_staff_groups_as_patients_and_others_as_staff() {
        let physician = caller(staff_of(MINE));
        assert_eq!(
            listed_view_of(&physician, &groups(&[MINE])),
            UserView::Patient {
                groups: Some(groups(&[MINE]))
            }
        );
        assert_eq!(
            listed_view_of(&physician, &groups(&[OTHER])),
            UserView::Staff {
                groups: Some(groups(&[MINE]))
            }
        );
        assert_eq!(
            listed_view_of(&caller(with_global("VIEW_USER")), &BTreeSet::new()),
            UserView::Full
        );
    }
}
