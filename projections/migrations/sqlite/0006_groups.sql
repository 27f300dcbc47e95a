-- Group roles and the enlistments of users in groups (staff and patients).
CREATE TABLE group_roles_v1 (
    id                 TEXT PRIMARY KEY,
    group_id           TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL
);
CREATE INDEX group_roles_v1_group ON group_roles_v1 (group_id);

CREATE TABLE group_role_permissions_v1 (
    role_id    TEXT NOT NULL,
    permission TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE staff_enlistments_v1 (
    user_id            TEXT NOT NULL,
    group_id           TEXT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    update_timestamp   BIGINT NOT NULL,
    position           BIGINT NOT NULL,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX staff_enlistments_v1_group ON staff_enlistments_v1 (group_id);

CREATE TABLE staff_enlistment_roles_v1 (
    user_id  TEXT NOT NULL,
    group_id TEXT NOT NULL,
    role_id  TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, group_id, role_id)
);
CREATE INDEX staff_enlistment_roles_v1_role ON staff_enlistment_roles_v1 (role_id);

CREATE TABLE patient_enlistments_v1 (
    user_id            TEXT NOT NULL,
    group_id           TEXT NOT NULL,
    expiry_timestamp   BIGINT,
    creation_timestamp BIGINT NOT NULL,
    position           BIGINT NOT NULL,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX patient_enlistments_v1_group ON patient_enlistments_v1 (group_id);
