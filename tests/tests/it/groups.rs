//! Groups over HTTP: group roles, staff and patient enlistments, the three user views, and group
//! permissions that reach only their own group, in both deployments.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_tests::{TestEnv, TestServer};

use crate::http::{code, plain_user};
use crate::in_both_deployments;

const GROUP: &str = "5e9f0000000000000000000a";
const OTHER_GROUP: &str = "5e9f0000000000000000000b";

/// Logs `email` in (every plain user has the same password) and returns the access token.
async fn token(server: &TestServer, email: &str) -> anyhow::Result<String> {
    let tokens = server.login(email, "jane's password").await?;
    Ok(tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

fn ids(page: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["id"].as_str())
        .collect();
    ids.sort_unstable();
    ids
}

in_both_deployments! {
    async fn staff_and_patients_see_each_other_through_their_groups(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let doctor = plain_user(&server, "doctor@example.com").await?;
        let patient = plain_user(&server, "patient@example.com").await?;
        let outsider = plain_user(&server, "outsider@example.com").await?;
        let doctor_token = token(&server, "doctor@example.com").await?;
        let patient_token = token(&server, "patient@example.com").await?;
        let outsider_token = token(&server, "outsider@example.com").await?;
        let (doc, pat, out) = (Some(doctor_token.as_str()), Some(patient_token.as_str()), Some(outsider_token.as_str()));

        // A group role with a group permission, given to the doctor as staff of the group.
        let (status, role) = server
            .call(Method::POST, &format!("/users/v1/groups/{GROUP}/roles"), admin,
                Some(json!({"name": " Physician ", "description": "Treats patients"})))
            .await?;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert_eq!((role["name"].clone(), role["group_id"].clone(), role["permissions"].clone()),
            (json!("Physician"), json!(GROUP), json!([])));
        let role_id = role["id"].as_str().unwrap_or_default().to_owned();
        let (_, added) = server
            .call(Method::POST, &format!("/users/v1/groups/{GROUP}/roles/add_permissions"), admin,
                Some(json!({"permissions": ["REMOVE_PATIENT", "ADD_STAFF"]})))
            .await?;
        assert_eq!(added, json!({"affectedRecords": 1}), "without RQL: every role of the group");
        let (_, enlisted) = server
            .call(Method::POST, &format!("/users/v1/add_to_staff?eq(id,{doctor})"), admin,
                Some(json!({"groups": [GROUP]})))
            .await?;
        assert_eq!(enlisted, json!({"affectedRecords": 1}));
        let unknown_role = "0123456789abcdef01234567";
        let (_, given) = server
            .call(Method::POST, &format!("/users/v1/groups/{GROUP}/staff/add_roles?eq(id,{doctor})"), admin,
                Some(json!({"roles": [role_id, unknown_role]})))
            .await?;
        assert_eq!(given, json!({"affectedRecords": 1}));
        let (_, me) = server.call(Method::GET, "/users/v1/me", doc, None).await?;
        assert_eq!(me["staff_enlistments"][0]["group_id"], json!(GROUP));
        assert_eq!(me["staff_enlistments"][0]["roles"][0]["name"], json!("Physician"));
        assert_eq!(me["staff_enlistments"][0]["roles"][0]["permissions"], json!(["ADD_STAFF", "REMOVE_PATIENT"]));
        assert_eq!(me["staff_enlistments"][0]["roles"].as_array().map(Vec::len), Some(1));

        // The patient, enlisted once only.
        let expiry = 4_102_444_800_000_i64;
        let enlist = json!({"group_id": GROUP, "expiry_timestamp": expiry});
        let path = format!("/users/v1/{patient}/patient_enlistments");
        let (status, body) = server.call(Method::POST, &path, doc, Some(enlist.clone())).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)), "ADD_PATIENT is global only");
        let (status, body) = server.call(Method::POST, &path, admin, Some(enlist.clone())).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (status, body) = server.call(Method::POST, &path, admin, Some(enlist)).await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(17)));

        // The staff member sees the patient in the patient view, and fellow staff in the staff view.
        let (status, seen) = server.call(Method::GET, &format!("/users/v1/{patient}"), doc, None).await?;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(keys(&seen), ["activation", "email", "first_name", "id", "language", "last_name",
            "patient_enlistments", "phone_number", "time_zone"]);
        assert_eq!(seen["patient_enlistments"], json!([{"group_id": GROUP, "expiry_timestamp": expiry,
            "expired": false, "creation_timestamp": seen["patient_enlistments"][0]["creation_timestamp"]}]));
        let (_, patients) = server.call(Method::GET, "/users/v1/patients", doc, None).await?;
        assert_eq!(ids(&patients), [patient.as_str()]);
        let (_, staff) = server.call(Method::GET, "/users/v1/staff", doc, None).await?;
        assert_eq!(ids(&staff), [doctor.as_str()]);
        let (_, listed) = server.call(Method::GET, "/users/v1/", doc, None).await?;
        let mut expected = vec![doctor.as_str(), patient.as_str()];
        expected.sort_unstable();
        assert_eq!(ids(&listed), expected);

        // The patient sees the staff of their group, in the staff view; not other patients.
        let (status, seen) = server.call(Method::GET, &format!("/users/v1/{doctor}"), pat, None).await?;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(keys(&seen), ["email", "first_name", "id", "last_name", "phone_number",
            "staff_enlistments", "time_zone"]);
        let (_, listed) = server.call(Method::GET, "/users/v1/", pat, None).await?;
        assert_eq!(ids(&listed), [doctor.as_str()]);
        let (_, patients) = server.call(Method::GET, "/users/v1/patients", pat, None).await?;
        assert_eq!(patients["page"]["total"], 0);

        // Someone in no group sees neither.
        let (status, body) = server.call(Method::GET, &format!("/users/v1/{patient}"), out, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server.call(Method::GET, &format!("/users/v1/groups/{GROUP}/roles"), out, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (_, listed) = server.call(Method::GET, "/users/v1/patients", out, None).await?;
        assert_eq!(listed["page"]["total"], 0);

        // Group permissions act in their own group only.
        let (status, roles) = server.call(Method::GET, &format!("/users/v1/groups/{GROUP}/roles"), doc, None).await?;
        assert_eq!((status, roles["data"][0]["id"].clone()), (StatusCode::OK, json!(role_id)));
        let (status, body) = server
            .call(Method::POST, &format!("/users/v1/add_to_staff?eq(id,{outsider})"), doc,
                Some(json!({"groups": [GROUP, OTHER_GROUP]})))
            .await?;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, Some(10)));
        let (status, body) = server
            .call(Method::POST, &format!("/users/v1/add_to_staff?eq(id,{outsider})"), doc,
                Some(json!({"groups": [GROUP]})))
            .await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (_, staff) = server.call(Method::GET, "/users/v1/staff", doc, None).await?;
        let mut expected = vec![doctor.as_str(), outsider.as_str()];
        expected.sort_unstable();
        assert_eq!(ids(&staff), expected);

        // RQL reaches into enlistments.
        let (_, found) = server
            .call(Method::GET, &format!("/users/v1/?contains(patient_enlistments,eq(group_id,{GROUP}))"), admin, None)
            .await?;
        assert_eq!(ids(&found), [patient.as_str()]);
        let (_, found) = server
            .call(Method::GET, &format!("/users/v1/?eq(staff_enlistments.group_id,{OTHER_GROUP})"), admin, None)
            .await?;
        assert_eq!(found["page"]["total"], 0);

        // The doctor removes the patient from the group with their group permission.
        let removal = format!("/users/v1/{patient}/patient_enlistments/{GROUP}");
        let (status, body) = server.call(Method::DELETE, &removal, doc, None).await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"affectedRecords": 1})));
        let (status, body) = server.call(Method::DELETE, &removal, admin, None).await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)));
        let (status, _) = server.call(Method::GET, &format!("/users/v1/{patient}"), doc, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Taking the permission from the group role takes it from the doctor at once.
        let (_, removed) = server
            .call(Method::POST, &format!("/users/v1/groups/{GROUP}/roles/remove_permissions?eq(name,Physician)"), admin,
                Some(json!({"permissions": ["ADD_STAFF"]})))
            .await?;
        assert_eq!(removed, json!({"affectedRecords": 1}));
        let (status, _) = server
            .call(Method::POST, &format!("/users/v1/remove_from_staff?eq(id,{outsider})"), doc,
                Some(json!({"groups": [GROUP]})))
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Deleting the role takes it from the staff member; removing them from staff ends it all.
        let (_, deleted) = server
            .call(Method::DELETE, &format!("/users/v1/groups/{GROUP}/roles?eq(id,{role_id})"), admin, None)
            .await?;
        assert_eq!(deleted, json!({"affectedRecords": 1}));
        let (_, me) = server.call(Method::GET, "/users/v1/me", doc, None).await?;
        assert_eq!(me["staff_enlistments"][0]["roles"], json!([]));
        let (_, left) = server
            .call(Method::POST, &format!("/users/v1/remove_from_staff?eq(id,{doctor})"), admin,
                Some(json!({"groups": [GROUP]})))
            .await?;
        assert_eq!(left, json!({"affectedRecords": 1}));
        let (_, me) = server.call(Method::GET, "/users/v1/me", doc, None).await?;
        assert_eq!(me["staff_enlistments"], json!([]));
        let (status, _) = server.call(Method::GET, &format!("/users/v1/groups/{GROUP}/roles"), doc, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        Ok(())
    }
}

in_both_deployments! {
    async fn group_roles_are_managed_per_group(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let server = TestServer::start(&env).await?;
        let admin = server.admin_token().await?;
        let admin = Some(admin.as_str());
        let (_, permissions) = server.call(Method::GET, "/users/v1/groups/permissions", None, None).await?;
        let names: Vec<&str> = permissions["data"].as_array().into_iter().flatten()
            .filter_map(|p| p["name"].as_str()).collect();
        assert!(names.contains(&"ADD_GROUP_ROLE_TO_STAFF") && !names.contains(&"VIEW_USER"));

        for (group, name) in [(GROUP, "Nurse"), (GROUP, "Doctor"), (OTHER_GROUP, "Nurse")] {
            let (status, _) = server
                .call(Method::POST, &format!("/users/v1/groups/{group}/roles"), admin, Some(json!({"name": name})))
                .await?;
            assert_eq!(status, StatusCode::OK);
        }
        let (_, page) = server
            .call(Method::GET, &format!("/users/v1/groups/{GROUP}/roles?sort(name)"), admin, None)
            .await?;
        let names: Vec<&str> = page["data"].as_array().into_iter().flatten()
            .filter_map(|r| r["name"].as_str()).collect();
        assert_eq!((names, page["page"]["total"].clone()), (vec!["Doctor", "Nurse"], json!(2)));
        let nurse = page["data"][1]["id"].as_str().unwrap_or_default().to_owned();

        let (status, updated) = server
            .call(Method::PUT, &format!("/users/v1/groups/{GROUP}/roles/{nurse}"), admin,
                Some(json!({"description": "Cares"})))
            .await?;
        assert_eq!((status, updated["description"].clone(), updated["name"].clone()),
            (StatusCode::OK, json!("Cares"), json!("Nurse")));
        let (status, body) = server
            .call(Method::PUT, &format!("/users/v1/groups/{OTHER_GROUP}/roles/{nurse}"), admin,
                Some(json!({"description": "Elsewhere"})))
            .await?;
        assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, Some(16)), "a role belongs to one group");
        let (status, body) = server
            .call(Method::DELETE, &format!("/users/v1/groups/{GROUP}/roles"), admin, None)
            .await?;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, Some(20)), "deleting needs RQL");
        let (_, deleted) = server
            .call(Method::DELETE, &format!("/users/v1/groups/{GROUP}/roles?eq(name,Nurse)"), admin, None)
            .await?;
        assert_eq!(deleted, json!({"affectedRecords": 1}));
        let (_, other) = server
            .call(Method::GET, &format!("/users/v1/groups/{OTHER_GROUP}/roles"), admin, None)
            .await?;
        assert_eq!(other["page"]["total"], 1, "the other group's Nurse stays");
        Ok(())
    }
}
